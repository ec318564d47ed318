import XCTest
import MorphoIO
import MorphoTensor
@testable import MorphoTrain

/// Instance optimisation of one pair.
final class InstanceOptimizationTests: XCTestCase, BlobPairs {
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
}
