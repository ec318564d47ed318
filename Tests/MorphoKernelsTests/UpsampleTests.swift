import MorphoKernels
import XCTest

final class UpsampleTests: XCTestCase {
    /// PyTorch's source-coordinate rule for one axis, written out per voxel (align_corners=False).
    private func sourceCoordinate(_ j: Int, from n: Int, to m: Int, linear: Bool) -> [(Int, Double)] {
        let scale = Float(n) / Float(m)
        if !linear {
            return [(min(Int((Float(j) * scale).rounded(.down)), n - 1), 1)]
        }
        let s = max(scale * (Float(j) + 0.5) - 0.5, 0)
        let i0 = Int(s.rounded(.down)), l = Double(s) - Double(i0)
        return [(i0, 1 - l), (min(i0 + 1, n - 1), l)]
    }

    /// Direct trilinear/nearest resize: the product of the per-axis weights at every corner.
    private func naiveResize(_ x: [Float], planes: Int, from a: SpatialExtent, to b: SpatialExtent, linear: Bool) -> [Float] {
        var out = [Float](repeating: 0, count: planes * b.count)
        for p in 0..<planes { for z in 0..<b.d { for y in 0..<b.h { for xx in 0..<b.w {
            var v = 0.0
            for (iz, wz) in sourceCoordinate(z, from: a.d, to: b.d, linear: linear && a.d != b.d) {
                for (iy, wy) in sourceCoordinate(y, from: a.h, to: b.h, linear: linear) {
                    for (ix, wx) in sourceCoordinate(xx, from: a.w, to: b.w, linear: linear) {
                        v += wz * wy * wx * Double(x[p * a.count + (iz * a.h + iy) * a.w + ix])
                    }
                }
            }
            out[p * b.count + (z * b.h + y) * b.w + xx] = Float(v)
        } } } }
        return out
    }

    private func resized(_ x: [Float], planes: Int, from a: SpatialExtent, to b: SpatialExtent, linear: Bool) -> [Float] {
        var out = [Float](repeating: .nan, count: planes * b.count)
        x.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { o in
            resize(s.baseAddress!, extent: a, into: o.baseAddress!, newExtent: b, planes: planes, linear: linear)
        } }
        return out
    }

    private func resizedBack(_ g: [Float], planes: Int, from a: SpatialExtent, to b: SpatialExtent, linear: Bool) -> [Float] {
        var out = [Float](repeating: .nan, count: planes * a.count)
        g.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { o in
            resizeBackward(s.baseAddress!, newExtent: b, into: o.baseAddress!, extent: a, planes: planes, linear: linear)
        } }
        return out
    }

    private let cases: [(SpatialExtent, SpatialExtent)] = [
        (SpatialExtent(d: 4, h: 5, w: 6), SpatialExtent(d: 8, h: 10, w: 12)),      // 2× upsampling
        (SpatialExtent(d: 9, h: 7, w: 20), SpatialExtent(d: 5, h: 11, w: 13)),     // mixed down/up
        (SpatialExtent(h: 6, w: 17), SpatialExtent(h: 12, w: 34)),
        (SpatialExtent(h: 13, w: 8), SpatialExtent(h: 5, w: 8)),                   // one axis unchanged
    ]

    func testResizeMatchesPerVoxelInterpolation() {
        var rng = SeededGenerator(seed: 51)
        for (a, b) in cases {
            for linear in [true, false] {
                let x = rng.floats(2 * a.count)
                let ours = withThreads(2) { resized(x, planes: 2, from: a, to: b, linear: linear) }
                XCTAssertLessThan(maxAbsDifference(ours, naiveResize(x, planes: 2, from: a, to: b, linear: linear)), 1e-5,
                                  "\(a) → \(b) linear \(linear)")
            }
        }
    }

    func testBilinearUpsampleOfTwoPixelsMatchesPyTorch() {
        // F.interpolate([[[[1., 2.]]]], scale_factor=2, mode="bilinear") = [[1, 1.25, 1.75, 2]] × 2 rows.
        var out = [Float](repeating: 0, count: 8)
        [Float(1), 2].withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { o in
            upsample2x(s.baseAddress!, extent: SpatialExtent(h: 1, w: 2), into: o.baseAddress!, planes: 1, linear: true)
        } }
        XCTAssertEqual(out, [1, 1.25, 1.75, 2, 1, 1.25, 1.75, 2])
    }

    func testNearestResizeUsesFloorOfScaledIndex() {
        // 5 → 3: scale 5/3, sources ⌊0⌋, ⌊1.67⌋, ⌊3.33⌋ = 0, 1, 3. 2 → 4: j >> 1.
        XCTAssertEqual(resized([10, 11, 12, 13, 14], planes: 1, from: SpatialExtent(h: 1, w: 5), to: SpatialExtent(h: 1, w: 3), linear: false),
                       [10, 11, 13])
        XCTAssertEqual(resized([10, 11], planes: 1, from: SpatialExtent(h: 1, w: 2), to: SpatialExtent(h: 1, w: 4), linear: false),
                       [10, 10, 11, 11])
    }

    func testResizeBackwardIsTheAdjoint() {
        var rng = SeededGenerator(seed: 52)
        for (a, b) in cases {
            for linear in [true, false] {
                let x = rng.floats(3 * a.count), y = rng.floats(3 * b.count)
                assertAdjoint(resized(x, planes: 3, from: a, to: b, linear: linear), y,
                              x, withThreads(2) { resizedBack(y, planes: 3, from: a, to: b, linear: linear) },
                              "resize \(a) → \(b) linear \(linear)")
            }
        }
    }

    func testResizeToTheSameExtentIsACopy() {
        var rng = SeededGenerator(seed: 53)
        let e = SpatialExtent(d: 3, h: 4, w: 5)
        let x = rng.floats(e.count)
        XCTAssertEqual(resized(x, planes: 1, from: e, to: e, linear: true), x)
    }

}
