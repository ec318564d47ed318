import CSpinHint
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The threads behind `Parallel`: `threads − 1` persistent workers that, between jobs, poll for
/// the next one for a short while (`spinBudget`) before they sleep, plus the calling thread,
/// which always works on its own job.
///
/// Why not `DispatchQueue.concurrentPerform`: a training step is a few hundred parallel regions,
/// many of them 50–500 µs long (a 64³ U-Net step is ~21 ms). Dispatch parks its worker between
/// them, and waking a parked thread costs an inter-processor interrupt (in a virtual machine, an
/// exit to the host): tens of µs during which one core idles, per region. Polling workers, as
/// OpenMP runtimes (and so PyTorch's) keep them, start within a fraction of a µs.
///
/// A job is `count` chunks claimed in blocks from one shared counter, so a worker that starts
/// late, or shares its core with another process, takes fewer chunks instead of holding the
/// others up. Which thread runs a chunk never changes what the chunk computes (kernels key their
/// scratch and partial sums by chunk index), so results do not depend on the timing.
///
/// One job at a time: a call made while a job runs (a nested call from inside a chunk, or
/// another thread's call) runs its chunks inline on the calling thread.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// How long an idle worker polls before it sleeps, in ns. A sleeping worker costs the next
    /// job one wake-up (what Dispatch pays on every job); a polling one costs a core's time,
    /// which only matters when another process wants the core meanwhile.
    /// `MORPHOSEG_SPIN_MICROSECONDS` overrides it (0: sleep at once, as Dispatch does).
    static let spinBudget: UInt64 = {
        if let text = ProcessInfo.processInfo.environment["MORPHOSEG_SPIN_MICROSECONDS"], let us = UInt64(text) {
            return us * 1000
        }
        return 2_000_000
    }()

    /// Taken by the caller that owns the pool for one job.
    private let busy = Atomic<Bool>(false)
    /// The workers started so far (only grows; guarded by `busy`).
    private var workers: [Worker] = []

    // The current job, written by its caller before it posts the job to the workers (the
    // posting store publishes them) and cleared after every worker has checked out.
    private var body: ((Int) -> Void)?
    private var count = 0
    private var block = 1
    private let next = Atomic<Int>(0)

    /// Runs `body(i)` for every `i` in `0..<count` on the calling thread and up to `helpers`
    /// workers; returns when all chunks are done. Chunks must write disjoint memory.
    func run(_ count: Int, helpers: Int, _ body: (Int) -> Void) {
        guard helpers > 0, count > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<count { body(i) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        while workers.count < helpers { workers.append(Worker(pool: self)) }
        let participants = helpers + 1
        withoutActuallyEscaping(body) { body in
            self.body = body
            self.count = count
            // Blocks of one chunk while chunks are few (kernels pass a handful per thread);
            // ~8 blocks per thread for long elementwise counts, so the counter is not contended.
            self.block = count <= 64 * participants ? 1 : count / (8 * participants)
            next.store(0, ordering: .relaxed)
            for w in 0..<helpers { workers[w].post() }
            runChunks()
            for w in 0..<helpers { workers[w].retract() }
            self.body = nil
        }
    }

    /// Claims blocks of chunks until none are left; called by the caller and each posted worker.
    fileprivate func runChunks() {
        guard let body else { return }
        let (count, block) = (self.count, self.block)
        while true {
            let start = next.wrappingAdd(block, ordering: .relaxed).oldValue
            if start >= count { return }
            for i in start..<Swift.min(start + block, count) { body(i) }
        }
    }
}

/// One persistent worker thread and its hand-off slot.
private final class Worker: @unchecked Sendable {
    private static let idle = 0, posted = 1, running = 2
    /// `idle` → `posted` (by the caller) → `running` (by the worker, or back to `idle` by the
    /// caller if it finished the job first) → `idle` (by the worker, when it has checked out).
    private let slot = Atomic<Int>(0)
    /// Set by the worker before it sleeps on `wake`; whoever clears it owns the wake-up.
    private let sleeping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)

    init(pool: WorkerPool) {
        let thread = Thread { [unowned self] in self.loop(pool) }
        thread.stackSize = 8 << 20  // what Dispatch's workers get; kernels keep small tables on the stack
        thread.name = "morphoseg-worker"
        thread.start()
    }

    /// Offers the current job to this worker, waking it if it sleeps.
    func post() {
        slot.store(Self.posted, ordering: .sequentiallyConsistent)
        if sleeping.exchange(false, ordering: .sequentiallyConsistent) { wake.signal() }
    }

    /// After the caller ran out of chunks: withdraws the job if this worker has not taken it,
    /// or waits until it has checked out (its last chunk is at most one block away).
    func retract() {
        if slot.compareExchange(expected: Self.posted, desired: Self.idle, ordering: .acquiringAndReleasing).exchanged { return }
        while slot.load(ordering: .acquiring) != Self.idle { morphoseg_spin_pause() }
    }

    private func loop(_ pool: WorkerPool) {
        while true {
            waitForPost()
            if slot.compareExchange(expected: Self.posted, desired: Self.running, ordering: .acquiringAndReleasing).exchanged {
                pool.runChunks()
                slot.store(Self.idle, ordering: .releasing)
            }
        }
    }

    /// Polls `slot` for up to `WorkerPool.spinBudget`, then sleeps until `post` wakes it.
    /// Every 256 polls (a few µs) it also yields its core to any other runnable thread (a
    /// batch prefetcher, say), which `sched_yield` hands over only when there is one.
    private func waitForPost() {
        var polls = 0
        var deadline: UInt64 = 0
        while slot.load(ordering: .acquiring) != Self.posted {
            morphoseg_spin_pause()
            polls += 1
            if polls & 255 != 0 { continue }
            sched_yield()
            let now = DispatchTime.now().uptimeNanoseconds
            if deadline == 0 {
                deadline = now + WorkerPool.spinBudget
            } else if now >= deadline {
                sleep()
                return
            }
        }
    }

    private func sleep() {
        sleeping.store(true, ordering: .sequentiallyConsistent)
        if slot.load(ordering: .sequentiallyConsistent) == Self.posted {
            // Posted meanwhile: take the flag back, unless `post` already took it and signals.
            if sleeping.exchange(false, ordering: .sequentiallyConsistent) { return }
        }
        wake.wait()
    }
}
