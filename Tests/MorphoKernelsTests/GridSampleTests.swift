import MorphoKernels
import XCTest
import MorphoConformance
import MorphoTestSupport

final class GridSampleTests: XCTestCase {
    /// Independent double-precision warp: every one of the 2^rank corners checked against the
    /// volume bounds explicitly.
    private func naiveWarp(_ src: [Float], _ flow: [Double], batch: Int, channels: Int, extent e: SpatialExtent) -> [Double] {
        let rank = e.rank, vol = e.count
        var out = [Double](repeating: 0, count: src.count)
        let sizes = rank == 3 ? [e.d, e.h, e.w] : [e.h, e.w]
        for n in 0..<batch { for p in 0..<vol {
            let pos = rank == 3 ? [p / (e.h * e.w), (p / e.w) % e.h, p % e.w] : [p / e.w, p % e.w]
            let q = (0..<rank).map { Double(pos[$0]) + flow[(n * rank + $0) * vol + p] }
            for c in 0..<channels {
                var acc = 0.0
                for corner in 0..<(1 << rank) {
                    var weight = 1.0, index = 0, inside = true
                    for a in 0..<rank {
                        let bit = (corner >> (rank - 1 - a)) & 1
                        let i = Int(q[a].rounded(.down)) + bit
                        let t = q[a] - q[a].rounded(.down)
                        weight *= bit == 1 ? t : 1 - t
                        inside = inside && i >= 0 && i < sizes[a]
                        index = index * sizes[a] + (inside ? i : 0)
                    }
                    if inside { acc += weight * Double(src[(n * channels + c) * vol + index]) }
                }
                out[(n * channels + c) * vol + p] = acc
            }
        } }
        return out
    }

    private func warp(_ src: [Float], _ flow: [Float], batch: Int, channels: Int, extent: SpatialExtent) -> [Float] {
        var out = [Float](repeating: .nan, count: src.count)
        src.withUnsafeBufferPointer { s in flow.withUnsafeBufferPointer { f in out.withUnsafeMutableBufferPointer { o in
            warpLinear(src: s.baseAddress!, flow: f.baseAddress!, into: o.baseAddress!, batch: batch, channels: channels, extent: extent)
        } } }
        return out
    }

    private func warpBackward(_ src: [Float], _ flow: [Float], _ cot: [Float], batch: Int, channels: Int,
                              extent: SpatialExtent) -> (src: [Float], flow: [Float]) {
        var gs = [Float](repeating: .nan, count: src.count), gf = [Float](repeating: .nan, count: flow.count)
        src.withUnsafeBufferPointer { s in flow.withUnsafeBufferPointer { f in cot.withUnsafeBufferPointer { c in
            gs.withUnsafeMutableBufferPointer { a in gf.withUnsafeMutableBufferPointer { b in
                warpLinearBackward(src: s.baseAddress!, flow: f.baseAddress!, cotangent: c.baseAddress!,
                                   srcGrad: a.baseAddress!, flowGrad: b.baseAddress!, batch: batch, channels: channels, extent: extent)
            } }
        } } }
        return (gs, gf)
    }

    private func nearest(_ src: [Float], _ flow: [Float], batch: Int, channels: Int, extent: SpatialExtent) -> [Float] {
        var out = [Float](repeating: .nan, count: src.count)
        src.withUnsafeBufferPointer { s in flow.withUnsafeBufferPointer { f in out.withUnsafeMutableBufferPointer { o in
            warpNearest(src: s.baseAddress!, flow: f.baseAddress!, into: o.baseAddress!, batch: batch, channels: channels, extent: extent)
        } } }
        return out
    }

    /// `(batch, channels, extent)` of a fixture's `src` shape.
    private func layout(_ shape: [Int]) -> (Int, Int, SpatialExtent) {
        (shape[0], shape[1], SpatialExtent(Array(shape.dropFirst(2))))
    }

    func testWarpLinearMatchesVoxelMorphFixtures() throws {
        let cases = try Fixture.all("warp_linear_")
        XCTAssertEqual(cases.count, 2)
        for c in cases {
            let src = c.inputs["src"]!.floats, flow = c.inputs["flow"]!.floats
            let (n, ch, extent) = layout(c.inputs["src"]!.shape)
            c.assertClose(warp(src, flow, batch: n, channels: ch, extent: extent), c.output, "output")
            let grads = withThreads(2) { warpBackward(src, flow, c.cotangent!.floats, batch: n, channels: ch, extent: extent) }
            c.assertClose(grads.src, c.grads["src"]!, "grad src")
            c.assertClose(grads.flow, c.grads["flow"]!, "grad flow")
        }
    }

    func testWarpNearestMatchesGridSampleFixtures() throws {
        let cases = try Fixture.all("warp_nearest_")
        XCTAssertEqual(cases.count, 2)
        for c in cases {
            let (n, ch, extent) = layout(c.inputs["src"]!.shape)
            c.assertClose(nearest(c.inputs["src"]!.floats, c.inputs["flow"]!.floats, batch: n, channels: ch, extent: extent),
                          c.output, "output")
        }
    }

    func testWarpLinearMatchesNaiveImplementationWithSamplesLeavingTheVolume() {
        var rng = SeededGenerator(seed: 21)
        for (batch, channels, extent) in [(2, 3, SpatialExtent(d: 6, h: 7, w: 9)), (3, 2, SpatialExtent(h: 11, w: 10))] {
            let src = rng.floats(batch * channels * extent.count)
            let flow = rng.floats(batch * extent.rank * extent.count, in: -4...4)
            let ours = withThreads(2) { warp(src, flow, batch: batch, channels: channels, extent: extent) }
            let ref = naiveWarp(src, flow.map(Double.init), batch: batch, channels: channels, extent: extent)
            XCTAssertLessThan(maxAbsDifference(ours, ref.map { Float($0) }), 1e-5, "\(extent)")
        }
    }

    func testWarpWithZeroFlowIsIdentity() {
        var rng = SeededGenerator(seed: 22)
        let extent = SpatialExtent(d: 5, h: 6, w: 7)
        let src = rng.floats(2 * extent.count)
        let zero = [Float](repeating: 0, count: 3 * extent.count)
        XCTAssertEqual(warp(src, zero, batch: 1, channels: 2, extent: extent), src)
        XCTAssertEqual(nearest(src, zero, batch: 1, channels: 2, extent: extent), src)
    }

    func testWarpByWholeVoxelsShiftsAndFillsZeros() {
        let extent = SpatialExtent(h: 4, w: 5)
        let src = (0..<20).map { Float($0 + 1) }
        // Displace by +1 row and −2 columns everywhere: out[y, x] = src[y + 1, x − 2].
        let flow = [Float](repeating: 1, count: 20) + [Float](repeating: -2, count: 20)
        let out = warp(src, flow, batch: 1, channels: 1, extent: extent)
        for y in 0..<4 { for x in 0..<5 {
            let expected: Float = y + 1 < 4 && x - 2 >= 0 ? src[(y + 1) * 5 + x - 2] : 0
            XCTAssertEqual(out[y * 5 + x], expected)
        } }
    }

    func testWarpLinearSourceGradientIsTheExactAdjoint() {
        var rng = SeededGenerator(seed: 23)
        let extent = SpatialExtent(d: 7, h: 8, w: 6)
        let x = rng.floats(2 * 2 * extent.count), y = rng.floats(2 * 2 * extent.count)
        let flow = rng.floats(2 * 3 * extent.count, in: -3...3)
        let ax = warp(x, flow, batch: 2, channels: 2, extent: extent)
        let aty = withThreads(2) { warpBackward(x, flow, y, batch: 2, channels: 2, extent: extent).src }
        assertAdjoint(ax, y, x, aty, "warpLinear wrt src")
    }

    func testWarpLinearFlowGradientMatchesFiniteDifferences() {
        var rng = SeededGenerator(seed: 24)
        for (channels, extent) in [(2, SpatialExtent(d: 5, h: 6, w: 7)), (3, SpatialExtent(h: 9, w: 8))] {
            let count = extent.rank * extent.count
            let src = rng.floats(channels * extent.count)
            let cot = rng.floats(channels * extent.count)
            // Keep every coordinate's fractional part inside [0.1, 0.9] so ±h stays in one cell.
            let flow: [Float] = (0..<count).map { _ in
                Float(Int.random(in: -3...3, using: &rng)) + Float.random(in: 0.1...0.9, using: &rng)
            }
            let grad = warpBackward(src, flow, cot, batch: 1, channels: channels, extent: extent).flow
            let h = 1e-3
            func loss(_ f: [Double]) -> Double {
                zip(naiveWarp(src, f, batch: 1, channels: channels, extent: extent), cot).reduce(0) { $0 + $1.0 * Double($1.1) }
            }
            let base = flow.map(Double.init)
            for i in stride(from: 0, to: count, by: 3) {
                var plus = base, minus = base
                plus[i] += h; minus[i] -= h
                let fd = (loss(plus) - loss(minus)) / (2 * h)
                XCTAssertEqual(Double(grad[i]), fd, accuracy: 1e-4 * max(1, abs(fd)), "\(extent) flow element \(i)")
            }
        }
    }

    func testWarpNearestRoundsHalfToEvenAndZerosOutside() {
        let extent = SpatialExtent(h: 1, w: 6)
        let src: [Float] = [10, 11, 12, 13, 14, 15]
        // Columns sampled: 0+0.5 → 0, 1+0.5 → 2, 2+1.5 → 4, 3−0.5 → 2, 4+1.6 → 6 (outside), 5−5.5 → 0 (−0.5 → −0).
        let flow: [Float] = [0, 0, 0, 0, 0, 0] + [0.5, 0.5, 1.5, -0.5, 1.6, -5.5]
        XCTAssertEqual(nearest(src, flow, batch: 1, channels: 1, extent: extent), [10, 12, 14, 12, 0, 10])
    }

    func testWarpLinearIsZeroForNonFiniteDisplacements() {
        let extent = SpatialExtent(h: 2, w: 2)
        let src: [Float] = [1, 2, 3, 4]
        let flow: [Float] = [.nan, .infinity, -.infinity, 0, 0, 0, 0, .nan]
        XCTAssertEqual(warp(src, flow, batch: 1, channels: 1, extent: extent), [0, 0, 0, 0])
    }

}

extension GridSampleTests {
}
