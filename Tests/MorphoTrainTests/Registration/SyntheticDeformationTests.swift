import XCTest
import MorphoIO
import MorphoTensor
@testable import MorphoTrain

/// Random smooth fields, tissue labels and synthetic pairs.
final class SyntheticDeformationTests: XCTestCase {
    func testIntegratedRandomFieldDoesNotFoldEvenWhenLarge() {
        var rng = RandomGenerator(seed: 1)
        let plain = SmoothRandomField(smoothing: 5, maxDisplacement: 6, integrationSteps: 0).sample(spatial: [24, 28, 20], using: &rng)
        rng = RandomGenerator(seed: 1)
        let integrated = SmoothRandomField(smoothing: 5, maxDisplacement: 6, integrationSteps: 7).sample(spatial: [24, 28, 20], using: &rng)
        let plainFolding = RegistrationMetrics.jacobianStatistics(ofFlow: plain).foldingFraction
        let integratedFolding = RegistrationMetrics.jacobianStatistics(ofFlow: integrated).foldingFraction
        XCTAssertGreaterThan(plainFolding, 0.001, "the velocity itself folds at this amplitude")
        XCTAssertLessThan(integratedFolding, 0.0005)
        XCTAssertEqual(plain.withUnsafeBufferPointer { $0.map(abs).max()! }, 6, accuracy: 1e-4)
    }

    func testRandomFieldIsAFunctionOfTheSeed() {
        var a = RandomGenerator(seed: 4), b = RandomGenerator(seed: 4), c = RandomGenerator(seed: 5)
        let field = SmoothRandomField(smoothing: 5, maxDisplacement: 2)
        let fa = field.sample(spatial: [16, 16], using: &a)
        XCTAssertEqual(fa.shape, [1, 2, 16, 16])
        XCTAssertEqual(fa.scalars, field.sample(spatial: [16, 16], using: &b).scalars)
        XCTAssertNotEqual(fa.scalars, field.sample(spatial: [16, 16], using: &c).scalars)
    }

    func testTissueLabelsPickTheMostProbableClassInProbabilityOrByteMaps() {
        func map(_ values: [Float]) -> Volume { Volume(depth: 1, height: 1, width: values.count, data: values) }
        // Voxels: background wins, GM wins, WM wins, GM vs background tie-break by > (background).
        let gm: [Float] = [0.1, 0.6, 0.3, 0.5], wm: [Float] = [0.2, 0.3, 0.6, 0.0]
        let labels = TissueLabels.fromProbabilityMaps([map(gm), map(wm)])
        XCTAssertEqual(labels.data, [0, 1, 2, 0])
        let bytes = TissueLabels.fromProbabilityMaps([map(gm.map { $0 * 255 }), map(wm.map { $0 * 255 })])
        XCTAssertEqual(bytes.data, [0, 1, 2, 0])
    }

    func testDeformedPairKeepsTheInputAsFixedAndItsGeometry() throws {
        let p = PhantomConfig(dims: 3, size: [20, 18, 16], count: 1, classes: 3, noise: 0, bias: 0, spacing: [1.5, 1.5, 2], seed: 2)
        let (image, labels) = Phantom.make(p, index: 0)
        let pair = try SyntheticPair.deforming(image, labels: labels, field: SmoothRandomField(smoothing: 7, maxDisplacement: 2), seed: 3)
        XCTAssertEqual(pair.fixed.data, image.data)
        XCTAssertEqual(pair.fixedLabels?.data, labels.data)
        XCTAssertTrue(pair.moving.sameGrid(as: image))
        XCTAssertNotEqual(pair.moving.data, image.data)
        XCTAssertTrue(pair.movingLabels!.data.allSatisfy { [0, 1, 2].contains($0) })
        XCTAssertGreaterThan(pair.largestDisplacement, 0.5)
        // The moving image is the fixed one sampled at p + u(p).
        XCTAssertEqual(pair.moving.data, warp(image.imageTensor, pair.field).scalars)
    }
}
