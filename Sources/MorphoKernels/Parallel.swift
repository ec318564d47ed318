import Foundation

/// The one place MorphoSeg spreads work over cores. Kernels call `Parallel.forEach` with a
/// count of independent chunks; it runs them on `Parallel.threads` threads (`WorkerPool`) and
/// returns when all are done. With one thread (or one chunk) it runs inline, so a kernel has
/// no threading cost on small inputs and benchmarks can measure 1-thread scaling.
public enum Parallel {
    /// Worker count used by every kernel. Defaults to the machine's active cores; the CLI's
    /// `--threads` and the MPI trainer (one thread per rank) set it once at start-up.
    nonisolated(unsafe) public static var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body(chunk)` for every chunk in `0..<count` on up to `threads` threads (the caller
    /// and the pool's workers, `WorkerPool`), chunks first come first served; returns when all
    /// are done. Chunks must write disjoint memory. A call from inside a chunk runs inline.
    @inlinable
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        let workers = min(threads, count)
        if workers <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        runOnPool(count, helpers: workers - 1, body)
    }

    @usableFromInline
    static func runOnPool(_ count: Int, helpers: Int, _ body: (Int) -> Void) {
        WorkerPool.shared.run(count, helpers: helpers, body)
    }

    /// Splits `0..<total` into contiguous ranges of at least `grain` items (up to 4 per thread,
    /// so a thread slowed by another process hands its share to the others) and runs
    /// `body(range)` on each: the usual shape for elementwise loops.
    @inlinable
    public static func forRanges(_ total: Int, grain: Int = 32768, _ body: (Range<Int>) -> Void) {
        if total <= 0 { return }
        let pieces = max(1, min(4 * threads, total / max(grain, 1)))
        if pieces == 1 || threads == 1 { body(0..<total); return }
        let step = (total + pieces - 1) / pieces
        runOnPool(pieces, helpers: min(threads, pieces) - 1) { p in
            let lo = p * step
            let hi = min(total, lo + step)
            if lo < hi { body(lo..<hi) }
        }
    }

    /// `(first(), second())` with the two run at once, on the caller's thread and a worker's (in
    /// turn with one thread, or inside a chunk): for two independent serial jobs, such as
    /// preparing the fixed and the moving image of a registration.
    public static func both<A, B>(_ first: () -> A, _ second: () -> B) -> (A, B) {
        var a: A?
        var b: B?
        withUnsafeMutablePointer(to: &a) { slotA in
            withUnsafeMutablePointer(to: &b) { slotB in
                forEach(2) { i in
                    if i == 0 { slotA.pointee = first() } else { slotB.pointee = second() }
                }
            }
        }
        return (a!, b!)
    }
}
