import Foundation

/// Where a computation's memory peak comes from. With `MORPHOSEG_POOL_TRACE_MB=N` (N > 0), each
/// time the bytes held by live tensors (`StoragePool.liveBytes`) reach a new peak at least N MB
/// above the last one reported, a report goes to standard error:
///
///     pool peak 3270 MB after a request of 440 MB; live pooled buffers (MB): 880 440 440 …
///         <call stack of the request>
///
/// The last report of a run names the allocation that set its peak and what was live beside it
/// (e.g. `MORPHOSEG_POOL_TRACE_MB=20 morphoseg bench reg3d/vxm/160x192x224/step --runs 1
/// --seconds 0`; `resetPeak()`, which bench calls before each case, restarts the count). Off by
/// default: the pool then checks one integer on a new peak.
extension StoragePool {
    /// The report step in bytes (0: off), from `MORPHOSEG_POOL_TRACE_MB`.
    nonisolated(unsafe) static var traceStepBytes: Int = {
        guard let text = ProcessInfo.processInfo.environment["MORPHOSEG_POOL_TRACE_MB"], let mb = Int(text), mb > 0 else { return 0 }
        return mb << 20
    }()
    /// The live total of the last report.
    nonisolated(unsafe) static var tracedPeak = 0

    /// Reports the peak `live` (bytes) reached by a request of `request` bytes, with the sizes of
    /// the pooled buffers tensors hold besides it. Called by `take` with the pool's lock held.
    static func tracePeak(_ live: Int, request: Int, buffers: Dictionary<UnsafeMutableRawPointer, Int>.Values) {
        tracedPeak = live
        let sizes = buffers.sorted(by: >).map { String($0 >> 20) }.joined(separator: " ")
        let stack = Thread.callStackSymbols.dropFirst(2).prefix(16).map { "    " + $0 }.joined(separator: "\n")
        FileHandle.standardError.write(Data(
            "pool peak \(live >> 20) MB after a request of \(request >> 20) MB; live pooled buffers (MB): \(sizes)\n\(stack)\n".utf8))
    }
}
