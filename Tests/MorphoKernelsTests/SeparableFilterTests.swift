import Foundation
import MorphoKernels
import XCTest

final class SeparableFilterTests: XCTestCase {
    /// Dense correlation with an explicit `[kd, kh, kw]` kernel, zero padding, double precision.
    private func naiveCorrelate(_ x: [Float], planes: Int, extent e: SpatialExtent,
                                kernel: [Float], kd: Int, kh: Int, kw: Int) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for p in 0..<planes { for z in 0..<e.d { for y in 0..<e.h { for xx in 0..<e.w {
            var s = 0.0
            for a in 0..<kd { for b in 0..<kh { for c in 0..<kw {
                let zz = z + a - kd / 2, yy = y + b - kh / 2, xi = xx + c - kw / 2
                guard zz >= 0, zz < e.d, yy >= 0, yy < e.h, xi >= 0, xi < e.w else { continue }
                s += Double(kernel[(a * kh + b) * kw + c]) * Double(x[((p * e.d + zz) * e.h + yy) * e.w + xi])
            } } }
            out[((p * e.d + z) * e.h + y) * e.w + xx] = Float(s)
        } } } }
        return out
    }

    private func correlate(_ x: [Float], planes: Int, extent: SpatialExtent, kernel: SeparableKernel, adjoint: Bool = false) -> [Float] {
        var out = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { o in
            if adjoint {
                separableCorrelateAdjoint(s.baseAddress!, into: o.baseAddress!, planes: planes, extent: extent, kernel: kernel)
            } else {
                separableCorrelate(s.baseAddress!, into: o.baseAddress!, planes: planes, extent: extent, kernel: kernel)
            }
        } }
        return out
    }

    func testSeparableCorrelateMatchesDenseCorrelationIn3D() {
        var rng = SeededGenerator(seed: 31)
        let kernel = SeparableKernel(d: rng.floats(3), h: rng.floats(5), w: rng.floats(7))
        for extent in [SpatialExtent(d: 9, h: 11, w: 37), SpatialExtent(d: 4, h: 2, w: 3)] {
            let x = rng.floats(2 * extent.count)
            let ours = withThreads(2) { correlate(x, planes: 2, extent: extent, kernel: kernel) }
            let ref = naiveCorrelate(x, planes: 2, extent: extent, kernel: kernel.dense, kd: 3, kh: 5, kw: 7)
            XCTAssertLessThan(maxAbsDifference(ours, ref), 2e-5, "\(extent)")
        }
    }

    func testSeparableCorrelateWithSeedSobelMatricesMatchesConv2d() {
        var rng = SeededGenerator(seed: 32)
        let extent = SpatialExtent(h: 19, w: 23)
        let x = rng.floats(3 * extent.count)
        // Seed 000's literal matrices (rows = H, columns = W).
        let sobelX: [Float] = [-1, 0, 1, -2, 0, 2, -1, 0, 1]
        let sobelY: [Float] = [1, 2, 1, 0, 0, 0, -1, -2, -1]
        XCTAssertEqual(SeparableKernel.sobel(axis: 1, rank: 2).dense, sobelX)
        XCTAssertEqual(SeparableKernel.sobel(axis: 0, rank: 2).scaled(by: -1).dense, sobelY)
        for (kernel, matrix) in [(SeparableKernel.sobel(axis: 1, rank: 2), sobelX),
                                 (SeparableKernel.sobel(axis: 0, rank: 2).scaled(by: -1), sobelY)] {
            let ours = correlate(x, planes: 3, extent: extent, kernel: kernel)
            let ref = naiveCorrelate(x, planes: 3, extent: extent, kernel: matrix, kd: 1, kh: 3, kw: 3)
            XCTAssertLessThan(maxAbsDifference(ours, ref), 1e-5)
        }
    }

    func testSobel3DIsDerivativeAlongItsAxisTimesSmoothingAlongTheOthers() {
        let k = SeparableKernel.sobel(axis: 1, rank: 3)
        XCTAssertEqual(k.d, [1, 2, 1]); XCTAssertEqual(k.h, [-1, 0, 1]); XCTAssertEqual(k.w, [1, 2, 1])
        // A ramp along H: away from the border the response is 2 · (1+2+1)² = 32 per voxel of slope.
        let extent = SpatialExtent(d: 5, h: 6, w: 7)
        let ramp = (0..<extent.count).map { Float(($0 / 7) % 6) }
        let out = correlate(ramp, planes: 1, extent: extent, kernel: k)
        XCTAssertEqual(out[(2 * 6 + 3) * 7 + 3], 32)
    }

    func testGaussianTapsReproduceTheSeedsNormalisedKernel() {
        for sigma in [0.5, 1.0, 1.5, 2.0] {
            let taps = gaussianTaps(sigma: sigma)
            // Seed 000 `_gaussian_kernel`, in float32 as PyTorch computes it.
            let size = Int(2 * (3 * sigma).rounded(.up) + 1)
            XCTAssertEqual(taps.count, size)
            let coords = (0..<size).map { Float($0 - size / 2) }
            let s = Float(sigma)
            var seed: [Float] = []
            for x in coords { for y in coords { seed.append(exp(-(x * x + y * y) / (2 * s * s))) } }
            let total = seed.reduce(0, +)
            seed = seed.map { $0 / total }
            let ours = SeparableKernel.gaussian(sigma: sigma, rank: 2).dense
            XCTAssertLessThan(maxAbsDifference(ours, seed), 1e-7 * Float(size), "sigma \(sigma)")
            XCTAssertEqual(Double(ours.reduce(0, +)), 1, accuracy: 1e-6)
        }
    }

    func testSeparableCorrelateAdjointIsTheTranspose() {
        var rng = SeededGenerator(seed: 33)
        let kernel = SeparableKernel(d: rng.floats(5), h: rng.floats(3), w: rng.floats(9))
        let extent = SpatialExtent(d: 7, h: 8, w: 21)
        let x = rng.floats(2 * extent.count), y = rng.floats(2 * extent.count)
        assertAdjoint(correlate(x, planes: 2, extent: extent, kernel: kernel), y,
                      x, correlate(y, planes: 2, extent: extent, kernel: kernel, adjoint: true), "separableCorrelate")
    }

    func testGaussianSmoothingPreservesAConstantAwayFromTheBorder() {
        let extent = SpatialExtent(d: 12, h: 12, w: 12)
        let ones = [Float](repeating: 3, count: extent.count)
        let out = correlate(ones, planes: 1, extent: extent, kernel: .gaussian(sigma: 1, rank: 3))
        XCTAssertEqual(out[(6 * 12 + 6) * 12 + 6], 3, accuracy: 1e-5)
        XCTAssertLessThan(out[0], 3)  // zero padding
    }

}
