import Dispatch
import Foundation

/// The one place MorphoSeg spreads work over cores. Kernels call `Parallel.forEach` with a
/// count of independent chunks; it runs them on `Parallel.threads` workers (Dispatch) and
/// returns when all are done. With one thread (or one chunk) it runs inline, so a kernel has
/// no threading cost on small inputs and benchmarks can measure 1-thread scaling.
public enum Parallel {
    /// Worker count used by every kernel. Defaults to the machine's active cores; the CLI's
    /// `--threads` and the MPI trainer (one thread per rank) set it once at start-up.
    nonisolated(unsafe) public static var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body(chunk)` for every chunk in `0..<count`, at most `threads` at a time.
    /// Chunks must write disjoint memory.
    @inlinable
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        let workers = min(threads, count)
        if workers <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let work = UncheckedSendable(body)
            // Static round-robin over `workers` lanes keeps exactly `threads` cores busy.
            DispatchQueue.concurrentPerform(iterations: workers) { lane in
                var i = lane
                while i < count { work.value(i); i += workers }
            }
        }
    }

    /// Splits `0..<total` into at most `threads` contiguous ranges of at least `grain` items
    /// and runs `body(range)` on each: the usual shape for elementwise loops.
    @inlinable
    public static func forRanges(_ total: Int, grain: Int = 32768, _ body: (Range<Int>) -> Void) {
        if total <= 0 { return }
        let pieces = max(1, min(threads, total / max(grain, 1)))
        if pieces == 1 { body(0..<total); return }
        let step = (total + pieces - 1) / pieces
        withoutActuallyEscaping(body) { body in
            let work = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: pieces) { p in
                let lo = p * step
                let hi = min(total, lo + step)
                if lo < hi { work.value(lo..<hi) }
            }
        }
    }
}

/// Carries a value into Dispatch's `@Sendable` work closure. Kernels hand their chunks
/// disjoint memory, which is what makes this sound; the type system cannot see that.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    @inlinable public init(_ value: Value) { self.value = value }
}
