import XCTest
import MorphoIO
import MorphoTensor
@testable import MorphoTrain

/// Resampling volumes in world coordinates.
final class WorldResamplingTests: XCTestCase {
    func testResampledVolumeOverlaysTheOriginalInWorldSpace() {
        let affine = Affine(matrix: [[1, 0, 0, -10], [0, 1, 0, 5], [0, 0, 1, 2], [0, 0, 0, 1]])
        var data = [Float](repeating: 0, count: 8 * 6 * 4)
        for i in data.indices { data[i] = Float(i % 8) }   // the x index
        let v = Volume(depth: 4, height: 6, width: 8, data: data, affine: affine)
        let half = v.resampled(toSpacing: SIMD3(2, 2, 2), linear: true)
        XCTAssertEqual(half.spatialShape, [2, 3, 4])
        XCTAssertEqual(half.spacing, SIMD3(2, 2, 2))
        // New voxel 0 covers old voxels 0 and 1: centre at old x = 0.5, world −9.5.
        XCTAssertEqual(half.affine.apply(SIMD3(0, 0, 0)).x, -9.5, accuracy: 1e-9)
        XCTAssertEqual(half[0, 0, 0, 0], 0.5, accuracy: 1e-6)
        XCTAssertEqual(half[0, 1, 2, 3], 6.5, accuracy: 1e-6)
    }
}
