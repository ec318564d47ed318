import XCTest
import MorphoIO
import MorphoTensor
@testable import MorphoTrain

/// What a registration returns.
final class RegistrationResultTests: XCTestCase, BlobPairs {
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
