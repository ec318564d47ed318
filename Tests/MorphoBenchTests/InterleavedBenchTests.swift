import MorphoBench
import Synchronization
import XCTest

final class InterleavedBenchTests: XCTestCase {
    /// Every case is set up once, warmed up, then called once per round with the order rotating
    /// by one case each round; each case's result summarises exactly its per-round times.
    func testInterleavedRunsEveryCaseOncePerRoundInRotatingOrder() {
        let log = Mutex<[String]>([])
        let setups = Mutex(0)
        func counted(_ name: String) -> BenchCase {
            BenchCase(name: name) {
                setups.withLock { $0 += 1 }
                return { log.withLock { $0.append(name) } }
            }
        }
        let (results, perRound) = BenchRunner.interleaved([counted("a"), counted("b"), counted("c")], rounds: 4, warmups: 1)
        XCTAssertEqual(setups.withLock { $0 }, 3)
        // Warm-ups a b c, then rounds a b c / b c a / c a b / a b c.
        XCTAssertEqual(log.withLock { $0 }, ["a", "b", "c", "a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"])
        XCTAssertEqual(results.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(perRound.count, 4)
        for (i, r) in results.enumerated() {
            let times = perRound.map { $0[i] }
            XCTAssertEqual(r.runs, 4)
            XCTAssertEqual(r.minMs, times.min()!)
            XCTAssertEqual(r.maxMs, times.max()!)
            XCTAssertTrue(times.allSatisfy { $0 >= 0 })
        }
    }
}
