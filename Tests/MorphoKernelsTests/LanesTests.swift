import MorphoKernels
import XCTest

/// The lane helpers every SIMD loop shares: full and partial (tail) loads and stores, the tail
/// mask and the lane sum.
final class LanesTests: XCTestCase {
    private let source: [Float] = (0..<20).map { Float($0) * 0.5 - 3 }

    func testFullLoadAndStoreMoveSixteenUnalignedFloats() {
        var out = [Float](repeating: .nan, count: 20)
        source.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in storeLanes(loadLanes(s.baseAddress! + 3), o.baseAddress! + 1) }
        }
        XCTAssertTrue(out[0].isNaN)
        XCTAssertEqual(Array(out[1..<17]), Array(source[3..<19]))
        XCTAssertTrue(out[17...].allSatisfy(\.isNaN))
    }

    func testPartialLoadFillsTheOtherLanesAndPartialStoreWritesOnlyCount() {
        for count in [0, 1, 7, 15] {
            let v = source.withUnsafeBufferPointer { loadLanes($0.baseAddress! + 2, count: count, fill: -1) }
            for k in 0..<16 { XCTAssertEqual(v[k], k < count ? source[2 + k] : -1, "count \(count) lane \(k)") }
            var out = [Float](repeating: .nan, count: 16)
            out.withUnsafeMutableBufferPointer { storeLanes(v, $0.baseAddress!, count: count) }
            XCTAssertEqual(Array(out[0..<count]), Array(source[2..<(2 + count)]))
            XCTAssertTrue(out[count...].allSatisfy(\.isNaN), "count \(count)")
        }
    }

    func testLaneMaskSetsTheFirstCountLanes() {
        for count in [0, 5, 16] {
            let m = laneMask(count: count)
            for k in 0..<16 { XCTAssertEqual(m[k], k < count, "count \(count) lane \(k)") }
        }
    }

    func testLaneSumAddsEveryLaneInDouble() {
        let v = Lanes((0..<16).map { Float($0) + 0.25 })
        XCTAssertEqual(laneSum(v), (0..<16).reduce(0.0) { $0 + Double($1) + 0.25 })
    }

    func testShiftsMoveEveryLaneByOneAndInsertTheGivenValue() {
        let v = Lanes((0..<16).map(Float.init))
        XCTAssertEqual(shiftedUp(v, inserting: -1), Lanes([-1] + (0..<15).map(Float.init)))
        XCTAssertEqual(shiftedDown(v, inserting: 7), Lanes((1..<16).map(Float.init) + [7]))
        XCTAssertEqual(shiftedUp(v)[0], 0)
        XCTAssertEqual(shiftedDown(v)[15], 0)
    }
}
