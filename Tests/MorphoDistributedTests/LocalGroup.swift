import Foundation
@testable import MorphoDistributed

/// Several ranks as threads of the test process, with real collective semantics (every rank
/// blocks until all have called), to test the data-parallel logic without MPI.
final class LocalGroup: @unchecked Sendable {
    let size: Int
    private let condition = NSCondition()
    private var arrived = 0
    private var generation = 0
    private var slots: [UnsafeMutableRawPointer?]

    init(size: Int) {
        self.size = size
        slots = Array(repeating: nil, count: size)
    }

    /// Runs `body(communicator)` on `size` threads at once and returns their results by rank.
    static func run<T>(ranks: Int, _ body: @escaping @Sendable (any Communicator) -> T) -> [T] {
        let group = LocalGroup(size: ranks)
        let results = ResultBox<T>(count: ranks)
        let done = DispatchGroup()
        for r in 0..<ranks {
            done.enter()
            let thread = Thread {
                results.set(r, body(LocalRank(group: group, rank: r)))
                done.leave()
            }
            thread.start()
        }
        done.wait()
        return results.values()
    }

    func barrier() {
        condition.lock()
        let g = generation
        arrived += 1
        if arrived == size {
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == g { condition.wait() }
        }
        condition.unlock()
    }

    /// Deposits `pointer`, waits for all, lets `combine` read every rank's buffer, waits again so
    /// nobody writes before all have read, then lets `write` update this rank's buffer.
    func collective(rank: Int, _ pointer: UnsafeMutableRawPointer?, read: ([UnsafeMutableRawPointer?]) -> Void, write: () -> Void) {
        condition.lock()
        slots[rank] = pointer
        condition.unlock()
        barrier()
        condition.lock()
        let all = slots
        condition.unlock()
        read(all)
        barrier()
        write()
    }
}

final class ResultBox<T>: @unchecked Sendable {
    private var items: [T?]
    private let lock = NSLock()
    init(count: Int) { items = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: T) { lock.lock(); items[i] = v; lock.unlock() }
    func values() -> [T] { items.map { $0! } }
}

final class LocalRank: Communicator {
    let group: LocalGroup
    let rank: Int
    var size: Int { group.size }
    var name: String { "test rank \(rank) of \(size)" }

    init(group: LocalGroup, rank: Int) {
        self.group = group
        self.rank = rank
    }

    private func reduce<T: BinaryFloatingPoint>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: (T, T) -> T) {
        var result = [T](repeating: 0, count: buffer.count)
        group.collective(rank: rank, UnsafeMutableRawPointer(buffer.baseAddress), read: { all in
            for (r, p) in all.enumerated() {
                let b = p!.assumingMemoryBound(to: T.self)
                for i in result.indices { result[i] = r == 0 ? b[i] : op(result[i], b[i]) }
            }
        }, write: {
            for i in result.indices { buffer[i] = result[i] }
        })
    }

    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) { reduce(buffer, +) }
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) { reduce(buffer, +) }
    func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) { reduce(buffer) { Swift.max($0, $1) } }

    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        var copy = [UInt8](repeating: 0, count: buffer.count)
        group.collective(rank: rank, buffer.baseAddress, read: { all in
            if !copy.isEmpty { copy.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: all[root], count: buffer.count)) } }
        }, write: {
            copy.withUnsafeBytes { buffer.copyMemory(from: $0) }
        })
    }

    func barrier() { group.barrier() }
    func abort(_ message: String, code: Int32) -> Never { fatalError("rank \(rank) aborted: \(message)") }
    func finalize() {}
}
