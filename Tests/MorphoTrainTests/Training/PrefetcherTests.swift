import Foundation
import MorphoIO
import MorphoKernels
import MorphoTensor
import XCTest
@testable import MorphoTrain

/// Batches built ahead on worker threads.
final class PrefetcherTests: XCTestCase {
    func testPrefetcherDeliversItemsInOrderForAnyThreadCount() {
        for threads in [1, 3] {
            let p = Prefetcher(indices: 5..<45, threads: threads, capacity: 4) { i -> [Int] in
                var rng = SeedStream.generator(seed: 1, i)
                return (0..<100).map { _ in rng.index(1000) } + [i]
            }
            var seen: [Int] = []
            while let item = p.next() { seen.append(item.last!) }
            XCTAssertEqual(seen, Array(5..<45))
        }
    }

    func testDroppingAPrefetcherEarlyStopsItsWorkers() {
        var p: Prefetcher<Int>? = Prefetcher(indices: 0..<1000, threads: 2, capacity: 2) { $0 }
        XCTAssertEqual(p?.next(), 0)
        p = nil  // must not hang or crash
        XCTAssertNil(p)
    }
}
