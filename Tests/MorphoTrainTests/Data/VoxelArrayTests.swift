import Foundation
import MorphoIO
import MorphoKernels
import MorphoTensor
import XCTest
@testable import MorphoTrain

/// Axis permutations, flips and resampling of voxel arrays.
final class VoxelArrayTests: XCTestCase {
    func testPermutationAndItsInverseRestoreTheArray() {
        var rng = RandomGenerator(seed: 3)
        let a = VoxelArray(data: (0..<(2 * 3 * 4 * 5)).map { _ in rng.uniform() }, channels: 2, shape: [3, 4, 5], spacing: [1, 2, 3])
        for order in [[1, 0, 2], [2, 0, 1], [0, 2, 1]] {
            let p = a.permuted(order)
            XCTAssertEqual(p.shape, order.map { a.shape[$0] })
            XCTAssertEqual(p.spacing, order.map { a.spacing[$0] })
            XCTAssertEqual(p.permuted(VoxelArray.inversePermutation(order)), a)
        }
        // Spot check: [1, 0, 2] puts H first: p[c, y, z, x] == a[c, z, y, x].
        let p = a.permuted([1, 0, 2])
        let inP: Int = ((1 * 4 + 2) * 3 + 1) * 5 + 4
        let inA: Int = ((1 * 3 + 1) * 4 + 2) * 5 + 4
        XCTAssertEqual(p.data[inP], a.data[inA])
    }

    func testFlippingTwiceIsTheIdentity() {
        var rng = RandomGenerator(seed: 4)
        let a = VoxelArray(data: (0..<60).map { _ in rng.uniform() }, channels: 1, shape: [3, 4, 5], spacing: [1, 1, 1])
        for axis in 0..<3 {
            var b = a
            b.flip(axis: axis)
            XCTAssertNotEqual(a, b)
            let mirrored: [Int] = [40, 15, 4]
            XCTAssertEqual(b.data[0], a.data[mirrored[axis]])
            b.flip(axis: axis)
            XCTAssertEqual(a, b)
        }
    }

    func testLinearResamplingKeepsALinearRamp() {
        // A ramp along W sampled at half the spacing is still a ramp (inside the border voxels).
        let raw = VoxelArray(data: (0..<8).map { Float($0) }, channels: 1, shape: [1, 1, 8], spacing: [1, 1, 2])
        let fine = raw.resampled(toSpacing: [1, 1, 1], linear: true)
        XCTAssertEqual(fine.shape, [1, 1, 16])
        for i in 1..<15 { XCTAssertEqual(fine.data[i], (Float(i) + 0.5) / 2 - 0.5, accuracy: 1e-6) }
    }
}
