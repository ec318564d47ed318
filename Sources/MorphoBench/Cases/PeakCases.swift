import MorphoKernels

extension BenchCase {
    /// Iterations per worker of one `peak` run: about 35 ms on a 3.7 GHz core doing one
    /// 16-lane FMA per cycle.
    static let peakIterations = 4_000_000

    /// `peak`: the fp32 FMA ceiling on all `Parallel.threads` workers (`FMAPeak`): register-only
    /// `SIMD16<Float>.addingProduct` with 12 independent accumulators per worker.
    static var peakCase: BenchCase {
        BenchCase(name: "peak", flops: Double(Swift.max(1, Parallel.threads)) * Double(peakIterations) * FMAPeak.flopsPerIteration) {
            { FMAPeak.runOnAllWorkers(iterations: peakIterations) }
        }
    }
}
