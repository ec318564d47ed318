import MorphoKernels
import MorphoTensor
import XCTest

/// The differentiable wrappers of the box and separable filters: values against dense loops,
/// gradients against finite differences.
final class FixedFiltersTests: XCTestCase {
    var rng = RandomGenerator(seed: 31)

    /// Dense correlation of each plane of `x` ([N, C, D, H, W] or [N, C, H, W]) with `kernel`.
    func dense(_ x: Tensor, _ kernel: SeparableKernel) -> [Float] {
        let dims = Array(repeating: 1, count: 5 - x.rank) + x.spatialShape
        let (d, h, w) = (dims[0], dims[1], dims[2])
        let planes = x.shape[0] * x.shape[1]
        let (rd, rh, rw) = (kernel.d.count / 2, kernel.h.count / 2, kernel.w.count / 2)
        var out = [Float](repeating: 0, count: x.count)
        for p in 0..<planes { for z in 0..<d { for y in 0..<h { for xx in 0..<w {
            var s: Double = 0
            for (a, ka) in kernel.d.enumerated() { for (b, kb) in kernel.h.enumerated() { for (c, kc) in kernel.w.enumerated() {
                let zz = z + a - rd, yy = y + b - rh, xc = xx + c - rw
                guard zz >= 0, zz < d, yy >= 0, yy < h, xc >= 0, xc < w else { continue }
                s += Double(ka * kb * kc) * Double(x[flat: ((p * d + zz) * h + yy) * w + xc])
            } } }
            out[((p * d + z) * h + y) * w + xx] = Float(s)
        } } } }
        return out
    }

    func testBoxSumEqualsDenseOnesCorrelation() {
        let x = Tensor.randomNormal([2, 1, 5, 6, 7], using: &rng)
        let ones = SeparableKernel(d: [1, 1, 1], h: [1, 1, 1], w: [1, 1, 1])
        for (a, b) in zip(x.boxSum(window: 3).scalars, dense(x, ones)) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testBoxSumGradient() {
        assertFilterGradient(Tensor.randomNormal([1, 2, 6, 7], using: &rng)) { $0.boxSum(window: 5) }
        assertFilterGradient(Tensor.randomNormal([1, 1, 4, 5, 6], using: &rng)) { $0.boxSum(window: 3) }
    }

    func testSobelMatchesTheSeedMatricesIn2D() {
        let x = Tensor.randomNormal([1, 1, 6, 9], using: &rng)
        // seed 000: sobel_x = [[-1,0,1],[-2,0,2],[-1,0,1]] is the W derivative.
        for (a, b) in zip(x.sobel(axis: 1).scalars, dense(x, SeparableKernel(h: [1, 2, 1], w: [-1, 0, 1]))) {
            XCTAssertEqual(a, b, accuracy: 1e-5)
        }
        // A ramp along H of slope 1 has Sobel response 2·(1+2+1) = 8 in the interior.
        let ramp = Tensor(shape: [1, 1, 5, 5]) { p in for i in 0..<25 { p[i] = Float(i / 5) } }
        XCTAssertEqual(ramp.sobel(axis: 0)[flat: 12], 8)
        XCTAssertEqual(ramp.sobel(axis: 1)[flat: 12], 0)
    }

    func testGaussianPreservesConstantsAwayFromTheBorder() {
        let x = Tensor(shape: [1, 1, 9, 9, 9], repeating: 2)
        XCTAssertEqual(x.gaussianSmoothed(sigma: 1)[flat: 4 * 81 + 4 * 9 + 4], 2, accuracy: 1e-5)
        let y = Tensor.randomNormal([1, 1, 7, 8], using: &rng)
        for (a, b) in zip(y.gaussianSmoothed(sigma: 0.5).scalars, dense(y, .gaussian(sigma: 0.5, rank: 2))) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testSeparableFilterGradients() {
        assertFilterGradient(Tensor.randomNormal([2, 1, 6, 5], using: &rng)) { $0.sobel(axis: 0) }
        assertFilterGradient(Tensor.randomNormal([1, 1, 4, 5, 6], using: &rng)) { $0.sobel(axis: 2) }
        assertFilterGradient(Tensor.randomNormal([1, 2, 4, 5, 6], using: &rng)) { $0.gaussianSmoothed(sigma: 1) }
        // An asymmetric kernel exercises the reversed taps of the adjoint.
        let skew = SeparableKernel(d: [0.5, 1, -2], h: [1, 3, 0], w: [2, -1, 0.25])
        assertFilterGradient(Tensor.randomNormal([1, 1, 4, 5, 6], using: &rng)) { $0.correlated(with: skew) }
    }

    func assertFilterGradient(_ x: Tensor, file: StaticString = #filePath, line: UInt = #line, _ f: @escaping (Tensor) -> Tensor) {
        let r = GradientCheck.check([x]) { f($0[0]) }
        XCTAssertTrue(r.passed, r.description, file: file, line: line)
        XCTAssertGreaterThan(r.maxReference, 0, file: file, line: line)
    }
}
