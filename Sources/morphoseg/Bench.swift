import ArgumentParser
import MorphoBench
import MorphoTrain

/// `morphoseg bench [GROUP...] [--json] [--threads N]`: times the library's kernels.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time kernels and compare them with the machine's FMA peak.",
        discussion: """
            Runs the named cases (a full name, or a prefix such as `conv3d` or `conv2d/16-16`; \
            all cases if none). Each case: setup, one warm-up call, then at least --runs timed \
            calls and at least --seconds of them; reports median/min/max ms, GFLOP/s and the share \
            of the FMA peak where the FLOPs are known, and the case's peak RSS (VmHWM, reset \
            before each case). The `peak` case (fp32 FMAs on all threads) always runs first; its \
            fastest run is the reference for '% peak'. Timings on a shared machine are noisy: \
            compare medians, look at min/max for the noise, and at 'CPU use' (CPU time over \
            wall time per thread; below ~95 % other processes took turns on the cores) and \
            'GFLOP/s on CPU time' (what the case reaches while it runs).
            """)

    @Argument(help: "Case names or name prefixes (see --list).")
    var groups: [String] = []

    @Flag(help: "Print a JSON list of {name, median_ms, min_ms, max_ms, flops, gflops, peak_pct, peak_rss_mb, peak_tensor_mb, runs, cpu_ms, cpu_gflops}.")
    var json = false

    @OptionGroup var compute: ComputeOptions

    @Option(help: "Minimum timed calls per case.")
    var runs = 5

    @Option(help: "Minimum seconds of timed calls per case.")
    var seconds = 1.0

    @Flag(help: "List the case names and exit.")
    var list = false

    @Option(help: ArgumentHelp(
        "Interleave the selected cases: set them all up, then run this many rounds of one call each (order rotating), and print each round's times.",
        discussion: "For comparing cases on a machine whose speed drifts (e.g. `joint3d seg3d/unet/80x96x80x2/jointterms reg3d/vxm/80x96x80 --interleave 15`)."))
    var interleave: Int?

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
        if seconds < 0 { throw ValidationError("--seconds must be >= 0") }
        if let interleave, interleave < 1 { throw ValidationError("--interleave must be at least 1") }
        do {
            _ = try BenchRegistry.select(groups)
        } catch let error as BenchError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        ComputeSettings.apply(threads: compute.threads)
        let all = BenchRegistry.all
        if list {
            for c in all { print(c.name) }
            return
        }
        let options = BenchOptions(minRuns: runs, minSeconds: seconds)
        var selected = try BenchRegistry.select(groups, from: all)
        let peakCase = all.first { $0.name == "peak" }!
        selected.removeAll { $0.name == "peak" }

        if !json {
            print("morphoseg bench | \(BenchRunner.machineSummary())")
            print(BenchRunner.tableHeader())
        }
        let peak = BenchRunner.run(peakCase, options: options)
        var results = [peak]
        if !json { print(BenchRunner.tableRow(peak)) }
        // The machine's ceiling is the fastest peak run: slower ones only measure other load.
        let peakGflops = peakCase.flops.map { $0 / (peak.minMs / 1e3) / 1e9 }
        if let interleave {
            let (rows, perRound) = BenchRunner.interleaved(selected, rounds: interleave, peakGflops: peakGflops)
            results += rows
            if !json {
                for r in rows { print(BenchRunner.tableRow(r)) }
                print("\nPer round (ms), order rotating: " + selected.map(\.name).joined(separator: " | "))
                for (k, times) in perRound.enumerated() {
                    print("round \(k + 1): " + times.map { String(format: "%.1f", $0) }.joined(separator: " | "))
                }
            }
        } else {
            for c in selected {
                let r = BenchRunner.run(c, options: options, peakGflops: peakGflops)
                results.append(r)
                if !json { print(BenchRunner.tableRow(r)) }
            }
        }
        if json { print(BenchRunner.json(results)) }
    }
}
