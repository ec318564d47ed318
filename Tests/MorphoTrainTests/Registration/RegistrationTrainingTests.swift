import Foundation
import MorphoIO
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

final class RegistrationTrainingTests: XCTestCase, TinyRegistrationRun {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("reg-train")
    }

    func testShortTrainingRaisesDiceAboveUnregisteredWithoutFolding() throws {
        let config = try RegistrationRunConfig(yaml: tinyConfig())
        let summary = try TrainingRun.run(.registration(config), output: tempDir + "/run", progress: ProgressReporter(style: .quiet))
        XCTAssertEqual(summary.epochs, 10)
        let last = try XCTUnwrap(summary.history.last)
        let before = try XCTUnwrap(last.metric("dice_before")), after = try XCTUnwrap(last.metric("dice_mean"))
        print("tiny registration run: Dice \(before) → \(after), folding \(last.metric("folding_percent") ?? .nan) %")
        XCTAssertGreaterThan(after, before + 0.05)
        XCTAssertLessThan(try XCTUnwrap(last.metric("folding_percent")), 1)
        XCTAssertGreaterThan(try XCTUnwrap(last.metric("similarity")), try XCTUnwrap(last.metric("similarity_before")))
        for file in ["config.yaml", "registration.yaml", "metrics.jsonl", "best.safetensors", "last.safetensors", "curves.png", "overlay.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: tempDir + "/run/" + file), file)
        }
        XCTAssertEqual(try RegistrationRunConfig.load(tempDir + "/run/registration.yaml").registration, config.registration)
    }

    /// `similarity: {kind: mi}` trains: the epoch-mean MI loss falls, and the validation pairs
    /// end more similar (by MI) and better overlapping than they started. (MI is slower to
    /// start than LCC on these phantoms: after 4 epochs the Dice can still be below its start.)
    func testMutualInformationTrainingLowersItsLoss() throws {
        let config = try RegistrationRunConfig(yaml: tinyConfig(epochs: 10, loss: "loss: {similarity: {kind: mi}}"))
        XCTAssertEqual(config.registration.similarity.kind, .mi)
        let summary = try TrainingRun.run(.registration(config), output: tempDir + "/run", progress: ProgressReporter(style: .quiet))
        func mi(_ r: EpochRecord?) throws -> Double { try XCTUnwrap(r?.terms.first { $0.name == "mi" }?.value) }
        let first = try mi(summary.history.first), last = try mi(summary.history.last)
        let end = try XCTUnwrap(summary.history.last)
        let similarity = try XCTUnwrap(end.metric("similarity")), before = try XCTUnwrap(end.metric("similarity_before"))
        print(String(format: "tiny MI registration run: mi loss %.4f → %.4f (epochs 1 → 10); validation 1 − loss %.4f → %.4f; Dice %.3f → %.3f",
                     first, last, before, similarity, end.metric("dice_before") ?? .nan, end.metric("dice_mean") ?? .nan))
        XCTAssertLessThan(last, first)
        XCTAssertGreaterThan(similarity, before)
        XCTAssertGreaterThan(try XCTUnwrap(end.metric("dice_mean")), try XCTUnwrap(end.metric("dice_before")))
        XCTAssertLessThan(try XCTUnwrap(end.metric("folding_percent")), 1)
    }

    func testCheckpointLoadsAsARegistrationModelThatPredictsTheTrainedField() throws {
        let config = try RegistrationRunConfig(yaml: tinyConfig(epochs: 2))
        _ = try TrainingRun.run(.registration(config), output: tempDir + "/run", progress: ProgressReporter(style: .quiet))
        // The registration section travels inside the checkpoint: no sidecar needed.
        try FileManager.default.removeItem(atPath: tempDir + "/run/registration.yaml")
        let model = try RegistrationModel.load(tempDir + "/run/best.safetensors")
        XCTAssertEqual(model.config.registration, config.registration)
        // A phantom pair on a grid that is not a multiple of the network's size (padding + crop).
        let p = PhantomConfig(dims: 2, size: [30, 27], count: 1, classes: 3, noise: 0, bias: 0, spacing: [1, 1, 1], seed: 5)
        let (image, labels) = Phantom.make(p, index: 0)
        let synthetic = try SyntheticPair.deforming(image, labels: labels, field: SmoothRandomField(smoothing: 9, maxDisplacement: 2), seed: 4)
        let d = tempDir + "/"
        try synthetic.write(fixed: d + "f.nii.gz", moving: d + "m.nii.gz", fixedLabels: d + "fl.nii.gz", movingLabels: d + "ml.nii.gz", field: nil)
        let pair = try RegistrationPair.load(RegistrationPairFiles(
            fixed: d + "f.nii.gz", moving: d + "m.nii.gz", fixedLabels: d + "fl.nii.gz", movingLabels: d + "ml.nii.gz"))
        let flow = try model.predict(pair)
        XCTAssertEqual(flow.shape, [1, 2, 27, 30])
        XCTAssertTrue(flow.scalars.allSatisfy(\.isFinite))
        let result = try Registration.register(pair, method: .model(model))
        XCTAssertEqual(result.flow.scalars, flow.scalars)
        XCTAssertNotNil(result.quality.meanDiceAfter)
        // What `morphoseg register --model` writes: everything on the fixed geometry.
        try result.write(warped: d + "w.nii.gz", field: d + "u.nii.gz", labels: d + "wl.nii.gz", fieldUnits: .mm, pair: pair)
        let warped = try NIfTI.read(d + "w.nii.gz"), labelsOut = try NIfTI.read(d + "wl.nii.gz")
        XCTAssertTrue(warped.sameGrid(as: pair.fixed))
        XCTAssertTrue(labelsOut.sameGrid(as: pair.fixed))
        XCTAssertEqual(labelsOut.header.datatype, .int16)
        XCTAssertEqual(labelsOut.data, result.warpedLabels?.data)
        XCTAssertEqual(try NIfTI.readHeader(d + "u.nii.gz").dim, [30, 27, 1, 1, 2])
    }

    func testRefiningTheNetworksFieldDoesNotLowerSimilarity() throws {
        let config = try RegistrationRunConfig(yaml: tinyConfig(epochs: 2))
        _ = try TrainingRun.run(.registration(config), output: tempDir + "/run", progress: ProgressReporter(style: .quiet))
        let model = try RegistrationModel.load(tempDir + "/run/best.safetensors")
        let p = PhantomConfig(dims: 2, size: [32, 32], count: 1, classes: 3, noise: 0, bias: 0, spacing: [1, 1, 1], seed: 6)
        let (image, labels) = Phantom.make(p, index: 0)
        let synthetic = try SyntheticPair.deforming(image, labels: labels, field: SmoothRandomField(smoothing: 9, maxDisplacement: 3), seed: 2)
        let d = tempDir + "/"
        try synthetic.write(fixed: d + "f.nii.gz", moving: d + "m.nii.gz", fixedLabels: d + "fl.nii.gz", movingLabels: d + "ml.nii.gz", field: nil)
        let pair = try RegistrationPair.load(RegistrationPairFiles(
            fixed: d + "f.nii.gz", moving: d + "m.nii.gz", fixedLabels: d + "fl.nii.gz", movingLabels: d + "ml.nii.gz"))
        let network = try Registration.register(pair, method: .model(model))
        var steps = 0
        let refined = try Registration.register(pair, method: .refinedModel(model, ModelRefinement(iterations: 40))) { _ in steps += 1 }
        XCTAssertEqual(steps, 40)
        let figures = try XCTUnwrap(refined.refinement)
        XCTAssertEqual(figures.iterations, 40)
        // The figures of the network alone are those of `register --model` without refinement.
        XCTAssertEqual(figures.networkSimilarity, network.quality.similarityAfter)
        XCTAssertEqual(figures.networkMeanDice, network.quality.meanDiceAfter)
        XCTAssertNotEqual(refined.flow.scalars, network.flow.scalars)
        print("tiny network: LCC \(network.quality.similarityBefore.lcc) → \(network.quality.similarityAfter.lcc), "
              + "refined \(refined.quality.similarityAfter.lcc); Dice \(network.quality.meanDiceAfter ?? .nan) → \(refined.quality.meanDiceAfter ?? .nan)")
        XCTAssertGreaterThanOrEqual(refined.quality.similarityAfter.lcc, network.quality.similarityAfter.lcc)
        XCTAssertLessThan(refined.quality.jacobian.foldingFraction, 0.01)
        XCTAssertNil(network.refinement)
        // Masks reach the refinement: an all-ones mask changes nothing, half the image changes the field.
        let ones = Tensor(shape: [1, 1, 32, 32], data: [Float](repeating: 1, count: 32 * 32))
        let half = Tensor(shape: [1, 1, 32, 32], data: (0..<32 * 32).map { $0 % 32 < 16 ? 1 : 0 })
        let method = RegistrationMethod.refinedModel(model, ModelRefinement(iterations: 40))
        XCTAssertEqual(try Registration.register(pair, method: method, mask: ones).flow.scalars, refined.flow.scalars)
        XCTAssertNotEqual(try Registration.register(pair, method: method, mask: half).flow.scalars, refined.flow.scalars)
        XCTAssertThrowsError(try ModelRefinement(iterations: 5, optimization: { var s = InstanceOptimization.Settings(); s.diffeomorphic = true; return s }()).validate())
    }

    func testSegmentationCheckpointIsRefusedAsARegistrationModel() throws {
        let seg = try RunConfig(yaml: Demo.configYAML)
        let path = tempDir + "/seg.safetensors"
        try Checkpoint(config: seg, epoch: 1, rngState: [1, 2, 3, 4], bestScore: 0, bestEpoch: 1, staleValidations: 0, model: [], optimizer: [])
            .write(to: path)
        XCTAssertThrowsError(try RegistrationModel.load(path)) { error in
            XCTAssertTrue("\(error)".hasPrefix(path + ": a segmentation checkpoint"), "\(error)")
        }
    }

    func testDiffeomorphicHalfResolutionNetworkGivesFullResolutionFieldsWithoutFolding() throws {
        let yaml = tinyConfig(epochs: 4).replacingOccurrences(
            of: "network: {encoder: [8, 16, 16], decoder: [16, 16, 16, 8]}",
            with: "network: {encoder: [8, 16, 16], decoder: [16, 16, 16, 8], integration_steps: 7, half_resolution: true}")
        let config = try RegistrationRunConfig(yaml: yaml)
        XCTAssertEqual(config.registration.network.integrationSteps, 7)
        XCTAssertTrue(config.registration.network.halfResolution)
        let summary = try TrainingRun.run(.registration(config), output: tempDir + "/run", progress: ProgressReporter(style: .quiet))
        let last = try XCTUnwrap(summary.history.last)
        XCTAssertGreaterThan(try XCTUnwrap(last.metric("dice_mean")), try XCTUnwrap(last.metric("dice_before")))
        XCTAssertLessThan(try XCTUnwrap(last.metric("folding_percent")), 0.5)
        let model = try RegistrationModel.load(tempDir + "/run/last.safetensors")
        XCTAssertEqual(model.config.registration.network, config.registration.network)
        let task = try RegistrationTask(config: config)
        let batch = task.dataset.batch([task.dataset.validation[0]])
        let flow = withoutGradients { model.network(moving: batch.moving, fixed: batch.fixed) }
        XCTAssertEqual(flow.shape, [1, 2, 32, 32])
    }
}
