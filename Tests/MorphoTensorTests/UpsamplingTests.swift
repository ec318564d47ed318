import XCTest
@testable import MorphoTensor

final class UpsamplingTests: XCTestCase {
    var rng = RandomGenerator(seed: 61)

    func random(_ shape: [Int]) -> Tensor { Tensor.randomUniform(shape, low: -1, high: 1, using: &rng) }

    func testNearestUpsamplingRepeatsEachVoxel() {
        let x = random([2, 3, 3, 4, 5])
        let y = upsample(x)
        XCTAssertEqual(y.shape, [2, 3, 6, 8, 10])
        for p in 0..<6 { for z in 0..<6 { for h in 0..<8 { for w in 0..<10 {
            XCTAssertEqual(y[flat: ((p * 6 + z) * 8 + h) * 10 + w], x[flat: ((p * 3 + z / 2) * 4 + h / 2) * 5 + w / 2])
        } } } }
    }

    func testLinearUpsamplingFollowsHalfVoxelAlignment() {
        // align_corners=False along one axis: output j samples (j + 0.5)/2 − 0.5, clamped at the ends.
        let x = random([1, 1, 1, 5])
        let y = resize(x, to: [1, 10], mode: .linear)
        for j in 0..<10 {
            let s = min(max((Double(j) + 0.5) / 2 - 0.5, 0), 4)
            let i0 = Int(s), i1 = min(i0 + 1, 4), f = s - Double(i0)
            XCTAssertEqual(Double(y[flat: j]), (1 - f) * Double(x[flat: i0]) + f * Double(x[flat: i1]), accuracy: 1e-6)
        }
    }

    func testResizeOfAConstantIsConstant() {
        let x = Tensor(shape: [1, 2, 3, 4, 5], repeating: 1.5)
        for size in [[6, 8, 10], [2, 7, 3]] {
            for v in resize(x, to: size, mode: .linear).scalars { XCTAssertEqual(v, 1.5, accuracy: 1e-6) }
        }
    }

    func testUpsamplingAndResizeGradients2DAnd3D() {
        let x2 = random([2, 2, 3, 4]), x3 = random([1, 2, 3, 2, 3])
        for mode in [SamplingMode.nearest, .linear] {
            assertGradientMatchesFiniteDifferences([x2]) { upsample($0[0], mode: mode) }
            assertGradientMatchesFiniteDifferences([x3]) { upsample($0[0], mode: mode) }
            assertGradientMatchesFiniteDifferences([x3]) { resize($0[0], to: [5, 3, 2], mode: mode) }
        }
    }
}
