import Foundation
import MorphoKernels
import XCTest

final class ResampleTests: XCTestCase {
    private func resampled(_ x: [Float], _ a: SpatialExtent, channels: Int, to b: SpatialExtent, _ m: [Double],
                           linear: Bool, fill: Float = 0) -> [Float] {
        var out = [Float](repeating: .nan, count: channels * b.count)
        x.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { o in
            resampleAffine(s.baseAddress!, extent: a, channels: channels, into: o.baseAddress!, targetExtent: b,
                           targetToSource: m, linear: linear, fill: fill)
        } }
        return out
    }

    /// Direct trilinear sample with explicit corner bounds checks; outside corners read `fill`.
    private func naiveSample(_ x: [Float], _ a: SpatialExtent, channel: Int, at q: (Double, Double, Double), fill: Double) -> Double {
        let (sx, sy, sz) = q
        let fx = sx.rounded(.down), fy = sy.rounded(.down), fz = sz.rounded(.down)
        var v = 0.0
        for dz in 0...1 { for dy in 0...1 { for dx in 0...1 {
            let ix = Int(fx) + dx, iy = Int(fy) + dy, iz = Int(fz) + dz
            let wgt = (dx == 1 ? sx - fx : 1 - (sx - fx)) * (dy == 1 ? sy - fy : 1 - (sy - fy)) * (dz == 1 ? sz - fz : 1 - (sz - fz))
            let inside = ix >= 0 && ix < a.w && iy >= 0 && iy < a.h && iz >= 0 && iz < a.d
            v += wgt * (inside ? Double(x[channel * a.count + (iz * a.h + iy) * a.w + ix]) : fill)
        } } }
        return v
    }

    private let identity: [Double] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]

    func testIdentityMatrixCopiesTheVolume() {
        var rng = SeededGenerator(seed: 61)
        let e = SpatialExtent(d: 4, h: 5, w: 6)
        let x = rng.floats(2 * e.count)
        XCTAssertEqual(resampled(x, e, channels: 2, to: e, identity, linear: true), x)
        XCTAssertEqual(resampled(x, e, channels: 2, to: e, identity, linear: false), x)
    }

    func testTranslationByWholeVoxelsShiftsAndFills() {
        let e = SpatialExtent(d: 2, h: 3, w: 4)
        let x = (0..<e.count).map { Float($0) }
        // Target (x, y, z) reads source (x + 1, y, z − 1).
        let m: [Double] = [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, -1, 0, 0, 0, 1]
        for linear in [true, false] {
            let out = resampled(x, e, channels: 1, to: e, m, linear: linear, fill: -5)
            for z in 0..<2 { for y in 0..<3 { for xi in 0..<4 {
                let expected: Float = xi + 1 < 4 && z - 1 >= 0 ? x[((z - 1) * 3 + y) * 4 + xi + 1] : -5
                XCTAssertEqual(out[(z * 3 + y) * 4 + xi], expected, "linear \(linear) at \(z),\(y),\(xi)")
            } } }
        }
    }

    func testRotatedAndScaledResampleMatchesDirectTrilinearWithFill() {
        var rng = SeededGenerator(seed: 62)
        let a = SpatialExtent(d: 9, h: 10, w: 11), b = SpatialExtent(d: 7, h: 12, w: 8)
        let x = rng.floats(2 * a.count)
        let angle = 0.3, c = cos(angle), s = sin(angle)
        let m: [Double] = [1.3 * c, -s, 0.1, 0.7, s, 0.9 * c, 0, -1.2, 0.05, 0, 1.1, 0.4, 0, 0, 0, 1]
        let ours = withThreads(2) { resampled(x, a, channels: 2, to: b, m, linear: true, fill: 0.5) }
        for ch in 0..<2 { for z in 0..<b.d { for y in 0..<b.h { for xi in 0..<b.w {
            let (fx, fy, fz) = (Double(xi), Double(y), Double(z))
            let q = (m[0] * fx + m[1] * fy + m[2] * fz + m[3], m[4] * fx + m[5] * fy + m[6] * fz + m[7],
                     m[8] * fx + m[9] * fy + m[10] * fz + m[11])
            let ref = naiveSample(x, a, channel: ch, at: q, fill: 0.5)
            XCTAssertEqual(Double(ours[ch * b.count + (z * b.h + y) * b.w + xi]), ref, accuracy: 2e-5)
        } } } }
    }

    func testLinearResampleAgreesWithWarpByTheEquivalentDisplacementField() {
        var rng = SeededGenerator(seed: 63)
        let e = SpatialExtent(d: 8, h: 9, w: 10)
        let x = rng.floats(e.count)
        let m: [Double] = [0.9, 0.1, 0, 0.5, -0.1, 1.05, 0.05, 0.2, 0, 0.02, 0.95, -0.3, 0, 0, 0, 1]
        // flow channels are (D, H, W) displacements: source − target coordinate.
        var flow = [Float](repeating: 0, count: 3 * e.count)
        for z in 0..<e.d { for y in 0..<e.h { for xi in 0..<e.w {
            let p = (z * e.h + y) * e.w + xi
            let (fx, fy, fz) = (Double(xi), Double(y), Double(z))
            flow[p] = Float(m[8] * fx + m[9] * fy + m[10] * fz + m[11] - fz)
            flow[e.count + p] = Float(m[4] * fx + m[5] * fy + m[6] * fz + m[7] - fy)
            flow[2 * e.count + p] = Float(m[0] * fx + m[1] * fy + m[2] * fz + m[3] - fx)
        } } }
        var warped = [Float](repeating: 0, count: e.count)
        x.withUnsafeBufferPointer { s in flow.withUnsafeBufferPointer { f in warped.withUnsafeMutableBufferPointer { o in
            warpLinear(src: s.baseAddress!, flow: f.baseAddress!, into: o.baseAddress!, batch: 1, channels: 1, extent: e)
        } } }
        XCTAssertLessThan(maxAbsDifference(resampled(x, e, channels: 1, to: e, m, linear: true), warped), 1e-5)
    }

    func testNearestResampleRoundsHalfToEvenAndFillsOutside() {
        let e = SpatialExtent(d: 1, h: 1, w: 4)
        let x: [Float] = [10, 11, 12, 13]
        // Source x = 0.5·target + 0.5: targets 0…5 → 0.5, 1, 1.5, 2, 2.5, 3 → 0, 1, 2, 2, 2, 3; then 3.5 → 4 (outside).
        let m: [Double] = [0.5, 0, 0, 0.5, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
        XCTAssertEqual(resampled(x, e, channels: 1, to: SpatialExtent(d: 1, h: 1, w: 7), m, linear: false, fill: -1),
                       [10, 11, 12, 12, 12, 13, -1])
    }

}
