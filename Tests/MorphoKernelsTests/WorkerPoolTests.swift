import Foundation
import Synchronization
import XCTest

@testable import MorphoKernels

/// `Parallel` over `WorkerPool`: every chunk exactly once, whatever the count, the thread count,
/// nesting, concurrent callers or a worker that has gone to sleep; results independent of timing.
final class WorkerPoolTests: XCTestCase {
    private var savedThreads = 1
    override func setUp() { savedThreads = Parallel.threads }
    override func tearDown() { Parallel.threads = savedThreads }

    /// Counts how often each chunk ran (atomically enough: each chunk owns its own cell).
    private static func runCounts(_ count: Int) -> [Int] {
        var runs = [Int](repeating: 0, count: count)
        runs.withUnsafeMutableBufferPointer { cells in
            let cells = cells
            Parallel.forEach(count) { i in cells[i] += 1 }
        }
        return runs
    }

    func testEveryChunkRunsExactlyOnceForAnyCountAndThreadCount() {
        // 3 and 4 threads on a 2-core machine: more workers than cores must still finish.
        for threads in [1, 2, 3, 4] {
            Parallel.threads = threads
            for count in [0, 1, 2, 3, 5, 64, 129, 1000, 100_003] {
                let runs = Self.runCounts(count)
                XCTAssertEqual(runs.filter { $0 != 1 }.count, 0, "\(threads) threads, \(count) chunks")
            }
        }
    }

    func testRangesCoverTheTotalWithoutOverlap() {
        Parallel.threads = 2
        for total in [1, 31, 32768, 65537, 1_000_001] {
            var hits = [UInt8](repeating: 0, count: total)
            hits.withUnsafeMutableBufferPointer { cells in
                let cells = cells
                Parallel.forRanges(total, grain: 1000) { r in for i in r { cells[i] &+= 1 } }
            }
            XCTAssertTrue(hits.allSatisfy { $0 == 1 }, "total \(total)")
        }
    }

    func testACallFromInsideAChunkRunsInlineAndCompletes() {
        Parallel.threads = 2
        var sums = [Int](repeating: 0, count: 8)
        sums.withUnsafeMutableBufferPointer { outer in
            let outer = outer
            Parallel.forEach(8) { i in
                var inner = [Int](repeating: 0, count: 100)
                inner.withUnsafeMutableBufferPointer { cells in
                    let cells = cells
                    Parallel.forEach(100) { j in cells[j] = i * j }
                }
                outer[i] = inner.reduce(0, +)
            }
        }
        XCTAssertEqual(sums, (0..<8).map { $0 * 4950 })
    }

    func testCallsFromTwoThreadsAtOnceBothComplete() {
        Parallel.threads = 2
        let group = DispatchGroup()
        let totals = Totals()
        for caller in 0..<2 {
            DispatchQueue.global().async(group: group) {
                for _ in 0..<200 {
                    totals.add(WorkerPoolTests.runCounts(257).reduce(0, +), caller: caller)
                }
            }
        }
        group.wait()
        XCTAssertEqual(totals.values, [200 * 257, 200 * 257])
    }

    func testBothReturnsEachJobsResultOnOneOrTwoThreads() {
        for threads in [1, 2] {
            Parallel.threads = threads
            let (sum, text) = Parallel.both({ (1...1000).reduce(0, +) }, { String(repeating: "ab", count: 3) })
            XCTAssertEqual(sum, 500_500, "\(threads) threads")
            XCTAssertEqual(text, "ababab", "\(threads) threads")
        }
        // With two threads the two jobs run at once: each waits (10 s at most) for the other to start.
        Parallel.threads = 2
        let started = StartFlags()
        let deadline = Date().addingTimeInterval(10)
        _ = Parallel.both({ started.set(0); while !started.isSet(1) && Date() < deadline {} },
                          { started.set(1); while !started.isSet(0) && Date() < deadline {} })
        XCTAssertLessThan(Date(), deadline, "the two jobs did not run side by side")
    }

    func testASleepingWorkerWakesForTheNextJob() {
        Parallel.threads = 2
        XCTAssertEqual(Self.runCounts(16), [Int](repeating: 1, count: 16))
        // Longer than the polling budget, so the worker has gone to sleep on its semaphore.
        Thread.sleep(forTimeInterval: Double(WorkerPool.spinBudget) / 1e9 + 0.02)
        // Both threads must take part again: each chunk waits until the other thread has one.
        let started = StartFlags()
        let deadline = Date().addingTimeInterval(10)
        Parallel.forEach(2) { i in
            started.set(i)
            while !started.isSet(1 - i) && Date() < deadline {}
        }
        XCTAssertLessThan(Date(), deadline, "the second chunk never ran beside the first: the worker did not wake")
    }

    func testWeightGradientIsBitIdenticalFromRunToRun() {
        Parallel.threads = 2
        let g = ConvGeometry.cubic(n: 1, cin: 16, cout: 16, size: (12, 14, 20), kernel: 3, stride: 1, padding: 1)
        let x = randomArray(g.inputCount, seed: 3)
        let gy = randomArray(g.outputCount, seed: 4)
        var first = [Float]()
        for run in 0..<6 {
            var gw = [Float](repeating: 0, count: g.weightCount)
            Convolution.backwardWeight(g, input: x, gradOutput: gy, gradWeight: &gw, gradBias: nil)
            if run == 0 { first = gw } else { XCTAssertEqual(gw, first, "run \(run)") }
        }
    }
}

private final class StartFlags: Sendable {
    private let first = Atomic<Bool>(false), second = Atomic<Bool>(false)
    func set(_ i: Int) { if i == 0 { first.store(true, ordering: .sequentiallyConsistent) } else { second.store(true, ordering: .sequentiallyConsistent) } }
    func isSet(_ i: Int) -> Bool { i == 0 ? first.load(ordering: .sequentiallyConsistent) : second.load(ordering: .sequentiallyConsistent) }
}

private final class Totals: Sendable {
    private let first = Atomic<Int>(0), second = Atomic<Int>(0)
    func add(_ n: Int, caller: Int) { if caller == 0 { first.wrappingAdd(n, ordering: .relaxed) } else { second.wrappingAdd(n, ordering: .relaxed) } }
    var values: [Int] { [first.load(ordering: .relaxed), second.load(ordering: .relaxed)] }
}
