/// The machine's fp32 fused-multiply-add ceiling, measured the way the convolution kernels
/// compute: `SIMD16<Float>.addingProduct` on registers, enough independent accumulators to
/// cover the FMA latency at two issues per cycle, nothing read from memory. Benchmarks divide
/// their GFLOP/s by this figure.
///
/// The accumulators must stay in registers (`VectorRegisters`): 12 vectors with AVX-512 (12 of
/// 32 zmm), 6 with AVX2 (12 of 16 ymm, each vector being two). Twelve vectors on AVX2 would
/// be 24 ymm, spill every iteration and under-state the peak by about half.
public enum FMAPeak {
    /// Independent accumulators: 12 vectors with AVX-512, 6 with AVX2.
    static let accumulators = VectorRegisters.hasAVX512 ? 12 : 6

    /// Floating-point operations of one `run(iterations:)` per worker: accumulators × 16 lanes × 2.
    public static let flopsPerIteration: Double = Double(accumulators) * 16 * 2

    /// Runs `iterations` rounds of independent 16-lane FMAs and returns a value derived from
    /// the accumulators (so the loop cannot be removed). `seed` keeps the inputs opaque.
    public static func run(iterations: Int, seed: Float = 1) -> Float {
        accumulators == 12 ? Loop<12>.run(iterations: iterations, seed: seed) : Loop<6>.run(iterations: iterations, seed: seed)
    }

    /// `N` accumulators in registers (an `InlineArray` the optimiser unrolls, as the
    /// convolution microkernels do).
    enum Loop<let N: Int> {
        @inline(never)
        static func run(iterations: Int, seed: Float) -> Float {
            var acc = InlineArray<N, SIMD16<Float>>(repeating: SIMD16(repeating: seed))
            for k in 0..<N { acc[k] += SIMD16(repeating: Float(k)) }
            // x·y + a with |x·y| tiny: values stay finite and normal however long the loop runs.
            let x = SIMD16<Float>(repeating: 0.999 * seed), y = SIMD16<Float>(repeating: 1e-7)
            for _ in 0..<iterations {
                for k in 0..<N { acc[k] = acc[k].addingProduct(x, y) }
            }
            var total = SIMD16<Float>()
            for k in 0..<N { total += acc[k] }
            return total.sum()
        }
    }

    /// Runs `run(iterations:)` once on each of `Parallel.threads` workers; returns the total
    /// floating-point operations done.
    @discardableResult
    public static func runOnAllWorkers(iterations: Int) -> Double {
        let workers = Swift.max(1, Parallel.threads)
        Parallel.forEach(workers) { w in
            let r = run(iterations: iterations, seed: 1 + Float(w) * 1e-3)
            if r.isNaN { print("FMAPeak: NaN") }  // keeps the result live
        }
        return Double(workers) * Double(iterations) * flopsPerIteration
    }
}
