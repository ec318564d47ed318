import XCTest
import MorphoIO
import MorphoTensor
@testable import MorphoTrain

final class RegistrationOptimizationTests: XCTestCase {
    /// A 3D image of two nested blobs `[1, 1, d, h, w]` and its labels (1 outer, 2 inner), centred
    /// at `centre` (voxels, (z, y, x)).
    func blobs(_ d: Int, _ h: Int, _ w: Int, centre: SIMD3<Double>) -> (image: Tensor, labels: Tensor) {
        var image = [Float](repeating: 0, count: d * h * w), labels = image
        for z in 0..<d { for y in 0..<h { for x in 0..<w {
            let p = SIMD3(Double(z), Double(y), Double(x)) - centre
            let r1 = ((p / SIMD3(6, 9, 8)) * (p / SIMD3(6, 9, 8))).sum()
            let r2 = (((p - SIMD3(0, 2, -2)) / SIMD3(3, 4, 3)) * ((p - SIMD3(0, 2, -2)) / SIMD3(3, 4, 3))).sum()
            let i = (z * h + y) * w + x
            // Smooth edges so the similarity has gradients beyond the boundary voxels.
            image[i] = Float(0.6 / (1 + exp(8 * (r1 - 1))) + 0.4 / (1 + exp(8 * (r2 - 1))))
            labels[i] = r2 < 1 ? 2 : r1 < 1 ? 1 : 0
        } } }
        return (Tensor(shape: [1, 1, d, h, w], data: image), Tensor(shape: [1, 1, d, h, w], data: labels))
    }

    func testInstanceOptimisationOfAShiftedPairRaisesDiceAndDoesNotFold() {
        let fixed = blobs(20, 28, 24, centre: SIMD3(10, 14, 12))
        let moving = blobs(20, 28, 24, centre: SIMD3(11, 16.5, 10))
        var settings = InstanceOptimization.Settings()
        settings.levels = 2
        settings.iterations = [60, 40]
        settings.lccWindow = 5
        var steps = 0
        let flow = InstanceOptimization(settings).register(fixed: fixed.image, moving: moving.image) { _ in steps += 1 }
        XCTAssertEqual(flow.shape, [1, 3, 20, 28, 24])
        XCTAssertEqual(steps, 100)
        let lccBefore = SimilarityFigures.measure(fixed.image, moving.image, lccWindow: 5).lcc
        let lccAfter = SimilarityFigures.measure(fixed.image, warp(moving.image, flow, mode: .linear), lccWindow: 5).lcc
        XCTAssertGreaterThan(lccAfter, lccBefore + 0.2)
        let warped = warp(moving.labels, flow, mode: .nearest)
        let before = RegistrationMetrics.meanDice(RegistrationMetrics.dicePerLabel(fixed.labels, moving.labels))
        let after = RegistrationMetrics.meanDice(RegistrationMetrics.dicePerLabel(fixed.labels, warped))
        let folding = RegistrationMetrics.jacobianStatistics(ofFlow: flow).foldingFraction
        print("shifted pair: Dice \(before) → \(after), folding \(folding), LCC \(lccBefore) → \(lccAfter)")
        XCTAssertGreaterThan(after, before + 0.15)
        XCTAssertGreaterThan(after, 0.85)
        XCTAssertLessThan(folding, 0.01)
    }

    func testZeroFlowRegistrationReturnsTheMovingImage() throws {
        let fixed = blobs(8, 10, 12, centre: SIMD3(4, 5, 6))
        let moving = blobs(8, 10, 12, centre: SIMD3(4, 6, 5))
        let grid = Volume(depth: 8, height: 10, width: 12, data: fixed.image.scalars, spacing: SIMD3(1.5, 1.5, 2))
        let pair = try RegistrationPair(
            fixed: grid, moving: grid.replacingData(with: moving.image), fixedLabels: grid.replacingData(with: fixed.labels),
            movingLabels: grid.replacingData(with: moving.labels), files: RegistrationPairFiles(fixed: "f", moving: "m"))
        let result = RegistrationResult(flow: .zeros([1, 3, 8, 10, 12]), pair: pair)
        XCTAssertEqual(result.warped.data, moving.image.scalars)
        XCTAssertEqual(result.warpedLabels?.data, moving.labels.scalars)
        XCTAssertTrue(result.warped.sameGrid(as: grid))
        XCTAssertEqual(result.quality.meanDiceAfter, result.quality.meanDiceBefore)
        XCTAssertEqual(result.quality.jacobian.foldingFraction, 0)
        XCTAssertEqual(result.quality.similarityAfter, result.quality.similarityBefore)
    }
}
