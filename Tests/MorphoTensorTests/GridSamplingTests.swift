import XCTest
@testable import MorphoTensor

final class GridSamplingTests: XCTestCase {
    var rng = RandomGenerator(seed: 41)

    func random(_ shape: [Int], low: Float = -1, high: Float = 1) -> Tensor {
        Tensor.randomUniform(shape, low: low, high: high, using: &rng)
    }

    /// A flow whose samples land strictly between voxel centres (fractional part in [0.2, 0.8]):
    /// linear interpolation has a kink at integer coordinates, where finite differences mislead.
    func offGridFlow(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in
            Float(Int(rng.next() % 5) - 2) + 0.2 + 0.6 * rng.uniform()
        })
    }

    func testWarpWithZeroFlowIsIdentity() {
        for shape in [[2, 3, 5, 6], [1, 2, 4, 5, 3]] {
            let src = random(shape)
            let flow = Tensor.zeros([shape[0], shape.count - 2] + Array(shape.dropFirst(2)))
            XCTAssertEqual(warp(src, flow).scalars, src.scalars)
            XCTAssertEqual(warp(src, flow, mode: .nearest).scalars, src.scalars)
        }
    }

    func testWarpByAWholeVoxelShiftsAndFillsZeros() {
        // Channel 1 displaces W (x): out[y, x] = src[y, x + 1], the last column reads outside.
        let src = random([1, 1, 3, 4])
        let flow = Tensor(shape: [1, 2, 3, 4], data: [Float](repeating: 0, count: 12) + [Float](repeating: 1, count: 12))
        for mode in [SamplingMode.linear, .nearest] {
            let out = warp(src, flow, mode: mode)
            for y in 0..<3 { for x in 0..<4 {
                XCTAssertEqual(out[flat: y * 4 + x], x < 3 ? src[flat: y * 4 + x + 1] : 0, accuracy: 1e-6)
            } }
        }
    }

    func testWarpGradients2DAnd3D() {
        let src2 = random([2, 2, 5, 6]), flow2 = offGridFlow([2, 2, 5, 6])
        assertGradientMatchesFiniteDifferences([src2, flow2]) { warp($0[0], $0[1]) }
        let src3 = random([1, 2, 4, 5, 3]), flow3 = offGridFlow([1, 3, 4, 5, 3])
        assertGradientMatchesFiniteDifferences([src3, flow3]) { warp($0[0], $0[1]) }
    }

    func testIntegrateOfAZeroFieldIsZero() {
        for shape in [[1, 2, 6, 5], [2, 3, 4, 3, 5]] {
            let v = integrate(.zeros(shape), steps: 7)
            XCTAssertEqual(v.shape, shape)
            XCTAssertEqual(v.scalars, [Float](repeating: 0, count: v.count))
        }
    }

    func testIntegrateOfAConstantFieldIsTheField() {
        // A uniform velocity translates: every squaring step doubles it exactly (inside the volume).
        let v = Tensor(shape: [1, 2, 8, 8], repeating: 0.25)
        let phi = integrate(v, steps: 3)
        // Samples past the far border read zeros, and each squaring step carries that one voxel
        // further in: after 3 steps voxels 0…3 are untouched and hold exactly v.
        for c in 0..<2 { for y in 0..<4 { for x in 0..<4 {
            XCTAssertEqual(phi[flat: (c * 8 + y) * 8 + x], 0.25, accuracy: 1e-6)
        } } }
    }

    func testIntegrateGradients2DAnd3D() {
        // |v| ≥ 0.2 keeps each first-step sample clear of its own voxel centre (see offGridFlow).
        func field(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in
                let m = 0.2 + 1.3 * rng.uniform()
                return rng.next() % 2 == 0 ? m : -m
            })
        }
        assertGradientMatchesFiniteDifferences([field([1, 2, 5, 6])], h: 1e-3, rtol: 3e-2) { integrate($0[0], steps: 3) }
        assertGradientMatchesFiniteDifferences([field([1, 3, 4, 3, 4])], h: 1e-3, rtol: 3e-2) { integrate($0[0], steps: 2) }
    }
}

final class DisplacementResizeTests: XCTestCase {
    func testResizedTranslationStaysATranslationInNewVoxels() {
        // A uniform shift of (1, -0.5) voxels at half resolution is (2, -1) voxels at full.
        let half = Tensor(shape: [1, 2, 4, 3]) { p in for i in 0..<12 { p[i] = 1; p[12 + i] = -0.5 } }
        let full = resizeDisplacement(half, to: [8, 6])
        XCTAssertEqual(full.shape, [1, 2, 8, 6])
        for i in 0..<48 {
            XCTAssertEqual(full[flat: i], 2, accuracy: 1e-6)
            XCTAssertEqual(full[flat: 48 + i], -1, accuracy: 1e-6)
        }
    }

    func testResizeDisplacementGradient() {
        var rng = RandomGenerator(seed: 71)
        let flow = Tensor.randomUniform([1, 3, 2, 3, 2], low: -1, high: 1, using: &rng)
        assertGradientMatchesFiniteDifferences([flow]) { resizeDisplacement($0[0], to: [4, 6, 4]) }
    }
}
