/// Software prefetch: asks the CPU to start loading the cache line at an address now, so that a
/// later load finds it in cache. A hint only: it never faults (any address may be passed) and
/// changes no result.
///
/// Why: the Winograd transforms read each source row once per tile row from a volume far larger
/// than L2 (16 MB for 16 channels at 64³), one short row (34 floats) per channel and slice at a
/// time, too many interleaved streams for the hardware prefetchers; under `perf` a third of the
/// input transform's samples sat on those row loads. Prefetching the rows of the next tile row
/// while the current one is transformed overlaps those misses with work.
///
/// How: LLVM's `llvm.prefetch` intrinsic, reached through `@_silgen_name` since Swift has no
/// prefetch of its own; it compiles to one `prefetcht0` (read) or `prefetchw` (write)
/// instruction, with no call (checked with `objdump`).
@_silgen_name("llvm.prefetch.p0")
private func llvmPrefetch(_ address: UnsafeRawPointer, _ write: Int32, _ locality: Int32, _ dataCache: Int32)

/// Prefetches the cache lines holding `count` floats from `p` into all cache levels, for reading
/// (`forWriting`: for writing, so a store does not wait for the line either).
@inline(__always)
func prefetchFloats(_ p: UnsafePointer<Float>, count: Int, forWriting: Bool = false) {
    // The intrinsic's arguments must be constants: one call per kind.
    @inline(__always) func line(_ q: UnsafePointer<Float>) {
        if forWriting { llvmPrefetch(UnsafeRawPointer(q), 1, 3, 1) } else { llvmPrefetch(UnsafeRawPointer(q), 0, 3, 1) }
    }
    var offset = 0
    while offset < count {
        line(p + offset)
        offset += 16
    }
    // The line of the last float (the first ones may start inside a line).
    line(p + count - 1)
}
