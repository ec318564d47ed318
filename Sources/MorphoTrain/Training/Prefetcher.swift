import Foundation

/// Produces items `indices` on background threads, at most `capacity` ahead of the consumer, and
/// hands them out in index order. With item `i` a pure function of `i` (batches seeded by their
/// global step), the sequence is the same for any thread count, and a resumed run continues it.
///
/// `next()` blocks until the next item is ready; `cancel()` (or dropping the prefetcher) stops
/// the workers after the items they are making.
public final class Prefetcher<Item: Sendable>: Sendable {
    private let queue: PrefetchQueue<Item>

    /// - Parameters:
    ///   - indices: the items to make, in order.
    ///   - threads: worker threads (≥ 1).
    ///   - capacity: items made but not yet taken, at most (≥ 1).
    public init(indices: Range<Int>, threads: Int, capacity: Int, produce: @escaping @Sendable (Int) -> Item) {
        queue = PrefetchQueue(indices: indices, capacity: capacity, produce: produce)
        let workers = max(1, min(threads, indices.count))
        queue.start(workers: workers)
    }

    deinit { queue.cancel() }

    /// The next item in index order, nil after the last one.
    public func next() -> Item? { queue.next() }

    /// Stops making items and waits for the workers to finish the ones in progress.
    public func cancel() { queue.cancel() }
}

/// The shared state of a `Prefetcher`; its workers hold this, not the prefetcher, so dropping
/// the prefetcher cancels them.
final class PrefetchQueue<Item: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [Int: Item] = [:]
    private var nextToMake: Int
    private var nextToTake: Int
    private let end: Int
    private let capacity: Int
    private var cancelled = false
    private var running = 0
    private let produce: @Sendable (Int) -> Item

    init(indices: Range<Int>, capacity: Int, produce: @escaping @Sendable (Int) -> Item) {
        nextToMake = indices.lowerBound
        nextToTake = indices.lowerBound
        end = indices.upperBound
        self.capacity = max(1, capacity)
        self.produce = produce
    }

    func start(workers: Int) {
        condition.lock()
        running = workers
        condition.unlock()
        for _ in 0..<workers {
            let thread = Thread { [self] in work() }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    private func work() {
        while true {
            condition.lock()
            while !cancelled && nextToMake < end && nextToMake >= nextToTake + capacity { condition.wait() }
            if cancelled || nextToMake >= end {
                running -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let i = nextToMake
            nextToMake += 1
            condition.unlock()
            let item = produce(i)
            condition.lock()
            ready[i] = item
            condition.broadcast()
            condition.unlock()
        }
    }

    func next() -> Item? {
        condition.lock()
        defer { condition.unlock() }
        guard nextToTake < end, !cancelled else { return nil }
        while ready[nextToTake] == nil { condition.wait() }
        let item = ready.removeValue(forKey: nextToTake)
        nextToTake += 1
        condition.broadcast()
        return item
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        while running > 0 { condition.wait() }
        ready.removeAll()
        condition.unlock()
    }
}
