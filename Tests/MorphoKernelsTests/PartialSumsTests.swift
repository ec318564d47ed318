import XCTest

@testable import MorphoKernels

/// `PartialSums`: how weight gradients split tiles into groups with their own sums.
final class PartialSumsTests: XCTestCase {
    func testGroupsCoverEveryItemOnceInOrder() {
        for (items, workers) in [(1, 2), (7, 2), (64, 2), (1000, 8), (3, 4)] {
            let p = PartialSums(items: items, workers: workers, flops: 1e12, floatsPerGroup: 1000)
            let covered = (0..<p.groups).flatMap { Array(p.range($0)) }
            XCTAssertEqual(covered, Array(0..<items), "\(items) items, \(workers) workers")
            XCTAssertTrue((0..<p.groups).allSatisfy { !p.range($0).isEmpty }, "no empty group")
        }
    }

    func testExtraGroupsOnlyWhereTheReductionIsCheapAndTheSumsSmall() {
        // Plenty of work per sum: 4 groups per worker.
        XCTAssertEqual(PartialSums(items: 1000, workers: 2, flops: 1e10, floatsPerGroup: 7000).groups, 8)
        // A deep layer: few FLOPs per float of sums, so one group per worker (no extra reads).
        XCTAssertEqual(PartialSums(items: 1000, workers: 2, flops: 1e7, floatsPerGroup: 442_000).groups, 2)
        // Large sums: extra groups stop at `extraBytes`.
        let large = PartialSums(items: 1000, workers: 2, flops: 1e14, floatsPerGroup: 1 << 20)
        XCTAssertEqual(large.groups, 2 + PartialSums.extraBytes / (4 << 20))
        // Never more groups than items.
        XCTAssertEqual(PartialSums(items: 3, workers: 2, flops: 1e12, floatsPerGroup: 10).groups, 3)
    }

    func testReduceAddsEveryGroupIntoTheFirst() {
        let floats = 40_000
        let p = PartialSums(items: 100, workers: 2, flops: 1e12, floatsPerGroup: floats)
        XCTAssertGreaterThan(p.groups, 2)
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: p.groups * floats)
        defer { sums.deallocate() }
        for g in 0..<p.groups { for i in 0..<floats { sums[g * floats + i] = Float(g + 1) * Float(i % 7) } }
        p.reduce(sums, floatsPerGroup: floats)
        let factor = Float(p.groups * (p.groups + 1) / 2)
        for i in [0, 1, 6, 7, 39_999] { XCTAssertEqual(sums[i], factor * Float(i % 7)) }
    }
}
