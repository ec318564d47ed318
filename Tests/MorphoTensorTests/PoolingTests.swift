import XCTest
@testable import MorphoTensor

final class PoolingTests: XCTestCase {
    var rng = RandomGenerator(seed: 51)

    /// Distinct values 0.1 apart in random order: no window has a tie, and a finite-difference
    /// step of 1e-2 never changes which voxel wins.
    func distinct(_ shape: [Int]) -> Tensor {
        var values = (0..<shape.reduce(1, *)).map { Float($0) * 0.1 }
        values.shuffle(using: &rng)
        return Tensor(shape: shape, data: values)
    }

    /// PyTorch's pooling by definition, over `[planes, D, H, W]` with D = 1 for 2D.
    func naivePool(_ x: Tensor, kernel k: Int, stride s: Int, max: Bool) -> [Float] {
        let sp = x.rank == 4 ? [1] + x.spatialShape : x.spatialShape
        let kd = x.rank == 4 ? 1 : k, sd = x.rank == 4 ? 1 : s
        let o = [(sp[0] - kd) / sd + 1, (sp[1] - k) / s + 1, (sp[2] - k) / s + 1]
        var out: [Float] = []
        for p in 0..<(x.shape[0] * x.shape[1]) { for z in 0..<o[0] { for y in 0..<o[1] { for xx in 0..<o[2] {
            var window: [Float] = []
            for a in 0..<kd { for b in 0..<k { for c in 0..<k {
                window.append(x[flat: ((p * sp[0] + z * sd + a) * sp[1] + y * s + b) * sp[2] + xx * s + c])
            } } }
            out.append(max ? window.max()! : window.reduce(0, +) / Float(window.count))
        } } } }
        return out
    }

    func testPoolingMatchesTheDefinition2DAnd3DWithOddSizes() {
        for (shape, k, s) in [([2, 3, 7, 6], 2, 2), ([1, 2, 9, 8], 3, 2), ([1, 2, 5, 7, 6], 2, 2), ([1, 1, 7, 5, 6], 3, 1)] {
            let x = distinct(shape)
            let mx = maxPool(x, kernel: k, stride: s), av = averagePool(x, kernel: k, stride: s)
            XCTAssertEqual(mx.scalars, naivePool(x, kernel: k, stride: s, max: true))
            for (a, b) in zip(av.scalars, naivePool(x, kernel: k, stride: s, max: false)) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        }
    }

    func testPoolingGradients2DAnd3D() {
        for (shape, k, s) in [([2, 2, 5, 6], 2, 2), ([1, 2, 7, 7], 3, 2), ([1, 2, 5, 4, 5], 2, 2), ([1, 1, 4, 5, 4], 3, 1)] {
            let x = distinct(shape)
            assertGradientMatchesFiniteDifferences([x]) { maxPool($0[0], kernel: k, stride: s) }
            assertGradientMatchesFiniteDifferences([x]) { averagePool($0[0], kernel: k, stride: s) }
        }
    }
}
