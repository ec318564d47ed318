import Foundation
import MorphoIO
import MorphoTensor
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

/// `register`'s stages together: the written affine and field compose in `apply` to the warped
/// output, the summary reports every stage, masks are checked.
final class StagedRegistrationTests: XCTestCase {
    /// A 4 mm MNI pair: content rotated and shifted, then a smooth deformation on top.
    func pair() throws -> StagedRegistration.Inputs {
        let fixed = try LinearTestCases.mni(spacing: 4)
        let c = LinearTestCases.centre(of: fixed)
        let moved = LinearTestCases.moved(fixed, by: LinearTestCases.rigid(degrees: SIMD3(3, 0, 6), shift: SIMD3(4, -3, 2), centre: c))
        let deformed = try SyntheticPair.deforming(moved, labels: nil, field: SmoothRandomField(smoothing: 7, maxDisplacement: 1.5), seed: 3)
        return StagedRegistration.Inputs(fixed: fixed, moving: deformed.moving, files: RegistrationPairFiles(fixed: "fixed", moving: "moving"))
    }

    func quickSettings() -> InstanceOptimization.Settings {
        var s = InstanceOptimization.Settings()
        s.levels = 2
        s.iterations = [30, 15]
        return s
    }

    func testWrittenFieldAndAffineComposeInApplyToTheWarpedImage() throws {
        let inputs = try pair()
        let outcome = try StagedRegistration(transform: .affineDeformable, method: .optimize(quickSettings()), lccWindow: 5).run(inputs)
        let folder = try temporaryFolder("staged")
        try outcome.result.write(warped: folder + "/warped.nii.gz", field: folder + "/field.nii.gz", pair: outcome.pair)
        try ITKTransformFile.write(try XCTUnwrap(outcome.linear).itk, to: folder + "/affine.mat")
        let chain = try TransformChain.load([folder + "/field.nii.gz", folder + "/affine.mat"])
        let applied = TransformApplication.apply(chain, to: inputs.moving, reference: inputs.fixed, interpolation: .linear)
        let warped = try NIfTI.read(folder + "/warped.nii.gz")
        var worst: Float = 0
        for (a, b) in zip(applied.data, warped.data) { worst = nanStrictMax(worst, abs(a - b)) }
        XCTAssertLessThan(worst, 1e-3 * inputs.moving.data.max()!, "apply -t field -t affine reproduces the warped image")
        // And the registration did its job: closer than the affine alone, much closer than before.
        let q = outcome.result.quality
        XCTAssertGreaterThan(q.similarityAfter.lcc, q.similarityBefore.lcc + 0.1)
        XCTAssertEqual(outcome.stages.map(\.stage), ["rigid", "affine", "deformable"])
        // Each stage ends no worse than it started on its own metric (the affine stage may find
        // little to add to the rigid one on a rigidly moved pair), the first and last better.
        for stage in outcome.stages { XCTAssertLessThanOrEqual(stage.lossAfter, stage.lossBefore, stage.stage) }
        XCTAssertLessThan(outcome.stages[0].lossAfter, outcome.stages[0].lossBefore - 0.05)
        XCTAssertLessThan(outcome.stages[2].lossAfter, outcome.stages[2].lossBefore - 0.05)
        XCTAssertNotNil(outcome.stages[0].transform)
        XCTAssertNil(outcome.stages[2].transform)
    }

    func testLinearOnlyWritesAZeroFieldAndTheDeformableOnlyNoLinearStage() throws {
        let inputs = try pair()
        let rigid = try StagedRegistration(transform: .rigid, method: .optimize(quickSettings())).run(inputs)
        XCTAssertEqual(rigid.stages.map(\.stage), ["rigid"])
        XCTAssertEqual(rigid.result.flow.scalars.map(abs).reduce(0, nanStrictMax), 0)
        XCTAssertEqual(rigid.linear?.kind, .rigid)
        let deformable = try StagedRegistration(transform: .deformable, method: .optimize(quickSettings())).run(inputs)
        XCTAssertEqual(deformable.stages.map(\.stage), ["deformable"])
        XCTAssertNil(deformable.linear)
    }

    func testAMaskOnAnotherGridIsRefusedNamingTheFile() throws {
        var inputs = try pair()
        inputs.fixedMask = try LinearTestCases.mni(spacing: 6)
        inputs.fixedMaskPath = "brain_mask.nii.gz"
        XCTAssertThrowsError(try StagedRegistration(transform: .affine, method: .optimize(quickSettings())).run(inputs)) { error in
            XCTAssertTrue("\(error)".contains("brain_mask.nii.gz"), "\(error)")
        }
    }

    func testTheMIDeformableStageRegistersAnInvertedContrast() throws {
        var inputs = try pair()
        let peak = inputs.moving.data.max()!
        inputs.moving.data = inputs.moving.data.map { $0 > 0 ? peak - $0 : 0 }
        var settings = quickSettings()
        settings.similarity = .mi
        settings.learningRate = 0.5
        let outcome = try StagedRegistration(transform: .affineDeformable, method: .optimize(settings)).run(inputs)
        XCTAssertEqual(outcome.stages.last?.metric, "mi")
        for stage in outcome.stages { XCTAssertLessThanOrEqual(stage.lossAfter, stage.lossBefore, stage.stage) }
        XCTAssertLessThan(try XCTUnwrap(outcome.stages.last).lossAfter, try XCTUnwrap(outcome.stages.last).lossBefore - 0.02)
        XCTAssertGreaterThan(outcome.result.quality.similarityAfter.mi, outcome.result.quality.similarityBefore.mi + 0.1)
    }

    func testTheTwoImagesNormalisedSideBySideEqualEachNormalisedAlone() {
        let a = Tensor(shape: [1, 1, 3, 4, 5], data: (0..<60).map { Float(($0 * 37) % 23) - 4 })
        let b = Tensor(shape: [1, 1, 3, 4, 5], data: (0..<60).map { Float(($0 * 11) % 17) * 0.5 })
        let (na, nb) = Registration.normalised(a, b)
        XCTAssertEqual(na.scalars, Registration.normalised(a).scalars)
        XCTAssertEqual(nb.scalars, Registration.normalised(b).scalars)
        XCTAssertNotEqual(na.scalars, nb.scalars)
    }
}
