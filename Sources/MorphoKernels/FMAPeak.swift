/// The machine's fp32 fused-multiply-add ceiling, measured the way the convolution kernels
/// compute: `SIMD16<Float>.addingProduct` on registers, enough independent accumulators to
/// cover the FMA latency at two issues per cycle, nothing read from memory. Benchmarks divide
/// their GFLOP/s by this figure.
///
/// The accumulators must stay in registers (`VectorRegisters`): 12 vectors with AVX-512 (12 of
/// 32 zmm), 6 with AVX2 (12 of 16 ymm, each vector being two). Twelve vectors on AVX2 would
/// be 24 ymm, spill every iteration and under-state the peak by about half.
public enum FMAPeak {
    /// Floating-point operations of one `run(iterations:)` per worker: accumulators × 16 lanes × 2.
    public static let flopsPerIteration: Double = Double(VectorRegisters.hasAVX512 ? 12 : 6) * 16 * 2

    /// Runs `iterations` rounds of independent 16-lane FMAs and returns a value derived from
    /// the accumulators (so the loop cannot be removed). `seed` keeps the inputs opaque.
    public static func run(iterations: Int, seed: Float = 1) -> Float {
        VectorRegisters.hasAVX512 ? runTwelve(iterations: iterations, seed: seed) : runSix(iterations: iterations, seed: seed)
    }

    /// 12 accumulators (AVX-512).
    @inline(never)
    static func runTwelve(iterations: Int, seed: Float) -> Float {
        var a0 = SIMD16<Float>(repeating: seed), a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3
        var a4 = a0 + 4, a5 = a0 + 5, a6 = a0 + 6, a7 = a0 + 7
        var a8 = a0 + 8, a9 = a0 + 9, a10 = a0 + 10, a11 = a0 + 11
        // x·y + a with |x·y| tiny: values stay finite and normal however long the loop runs.
        let x = SIMD16<Float>(repeating: 0.999 * seed), y = SIMD16<Float>(repeating: 1e-7)
        for _ in 0..<iterations {
            a0 = a0.addingProduct(x, y); a1 = a1.addingProduct(x, y)
            a2 = a2.addingProduct(x, y); a3 = a3.addingProduct(x, y)
            a4 = a4.addingProduct(x, y); a5 = a5.addingProduct(x, y)
            a6 = a6.addingProduct(x, y); a7 = a7.addingProduct(x, y)
            a8 = a8.addingProduct(x, y); a9 = a9.addingProduct(x, y)
            a10 = a10.addingProduct(x, y); a11 = a11.addingProduct(x, y)
        }
        return ((a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7) + (a8 + a9) + (a10 + a11)).sum()
    }

    /// 6 accumulators (AVX2: 12 ymm chains).
    @inline(never)
    static func runSix(iterations: Int, seed: Float) -> Float {
        var a0 = SIMD16<Float>(repeating: seed), a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3
        var a4 = a0 + 4, a5 = a0 + 5
        let x = SIMD16<Float>(repeating: 0.999 * seed), y = SIMD16<Float>(repeating: 1e-7)
        for _ in 0..<iterations {
            a0 = a0.addingProduct(x, y); a1 = a1.addingProduct(x, y)
            a2 = a2.addingProduct(x, y); a3 = a3.addingProduct(x, y)
            a4 = a4.addingProduct(x, y); a5 = a5.addingProduct(x, y)
        }
        return ((a0 + a1) + (a2 + a3) + (a4 + a5)).sum()
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
