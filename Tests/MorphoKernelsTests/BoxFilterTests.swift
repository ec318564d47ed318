import MorphoKernels
import XCTest

final class BoxFilterTests: XCTestCase {
    /// Direct window sum in double precision.
    private func naiveBoxSum(_ x: [Float], planes: Int, extent e: SpatialExtent, window: Int) -> [Float] {
        let r = window / 2
        var out = [Float](repeating: 0, count: x.count)
        for p in 0..<planes { for z in 0..<e.d { for y in 0..<e.h { for xx in 0..<e.w {
            var s = 0.0
            for k in max(0, z - r)...min(e.d - 1, z + r) {
                for j in max(0, y - r)...min(e.h - 1, y + r) {
                    for i in max(0, xx - r)...min(e.w - 1, xx + r) {
                        s += Double(x[((p * e.d + k) * e.h + j) * e.w + i])
                    }
                }
            }
            out[((p * e.d + z) * e.h + y) * e.w + xx] = Float(s)
        } } } }
        return out
    }

    private func box(_ x: [Float], planes: Int, extent: SpatialExtent, window: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { boxSum(s.baseAddress!, into: $0.baseAddress!, planes: planes, extent: extent, window: window) }
        }
        return out
    }

    func testBoxSumMatchesDirectSumIn3DWithLinesLongerThanTheRestartInterval() {
        var rng = SeededGenerator(seed: 11)
        for (extent, window) in [(SpatialExtent(d: 37, h: 34, w: 41), 5), (SpatialExtent(d: 9, h: 70, w: 66), 9),
                                 (SpatialExtent(d: 4, h: 3, w: 5), 9), (SpatialExtent(d: 6, h: 7, w: 8), 1)] {
            let x = rng.floats(2 * extent.count, in: 0...2)
            let ours = withThreads(2) { box(x, planes: 2, extent: extent, window: window) }
            let ref = naiveBoxSum(x, planes: 2, extent: extent, window: window)
            let scale = Float(pow(Double(window), 3)) * 2
            XCTAssertLessThan(maxAbsDifference(ours, ref), 2e-6 * scale, "extent \(extent) window \(window)")
        }
    }

    func testBoxSumIn2DSumsOnlyOverHAndW() {
        var rng = SeededGenerator(seed: 12)
        let extent = SpatialExtent(h: 45, w: 50)
        let x = rng.floats(3 * extent.count)
        let ours = box(x, planes: 3, extent: extent, window: 9)
        XCTAssertLessThan(maxAbsDifference(ours, naiveBoxSum(x, planes: 3, extent: extent, window: 9)), 1e-4)
    }

    func testBoxSumIsSelfAdjoint() {
        var rng = SeededGenerator(seed: 13)
        let extent = SpatialExtent(d: 11, h: 40, w: 13)
        let x = rng.floats(2 * extent.count), y = rng.floats(2 * extent.count)
        assertAdjoint(box(x, planes: 2, extent: extent, window: 7), y, x, box(y, planes: 2, extent: extent, window: 7),
                      "boxSum")
    }

    func testBoxSumOfOnesCountsTheVoxelsInsideTheWindow() {
        let extent = SpatialExtent(d: 5, h: 6, w: 7)
        let ones = [Float](repeating: 1, count: extent.count)
        let out = box(ones, planes: 1, extent: extent, window: 3)
        XCTAssertEqual(out[0], 8)                               // corner: 2×2×2
        XCTAssertEqual(out[(2 * 6 + 2) * 7 + 3], 27)            // interior
        XCTAssertEqual(out[(0 * 6 + 2) * 7 + 3], 18)            // face: 2×3×3
    }

    func testBoxSumIsTheSameWithOneAndTwoThreads() {
        var rng = SeededGenerator(seed: 14)
        let extent = SpatialExtent(d: 20, h: 33, w: 35)
        let x = rng.floats(3 * extent.count)
        XCTAssertEqual(withThreads(1) { box(x, planes: 3, extent: extent, window: 9) },
                       withThreads(2) { box(x, planes: 3, extent: extent, window: 9) })
    }

}
