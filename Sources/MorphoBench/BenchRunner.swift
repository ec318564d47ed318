import MorphoTensor
import Foundation
import MorphoKernels

/// Timing of one case. Times are wall-clock milliseconds of one call of the timed closure.
public struct BenchResult: Codable, Sendable {
    public var name: String
    public var medianMs: Double
    public var minMs: Double
    public var maxMs: Double
    /// Timed runs (after the warm-up).
    public var runs: Int
    /// Median CPU time (user + system, all threads) of one run, ms. Near `threads × median_ms`
    /// when the case had its cores to itself; well below when other processes took turns.
    public var cpuMs: Double
    /// Floating-point operations of one call, when known (declared, or counted by the layers).
    public var flops: Double?
    /// flops / median time, when the case's flops are known.
    public var gflops: Double?
    /// flops / (median CPU time / threads): what the case would reach with its cores to itself
    /// (on a shared machine, the figure to compare between runs). Ignores time spent waiting.
    public var cpuGflops: Double?
    /// gflops as a percentage of the `peak` case's GFLOP/s measured in the same process.
    public var peakPct: Double?
    /// Peak resident set (VmHWM) during setup and runs of this case, MB (2^20 bytes); nil
    /// where /proc is unavailable.
    public var peakRssMb: Double?
    /// Most bytes held by live tensors at once during the case, MB (`StoragePool.peakLiveBytes`):
    /// the memory the computation needs, without idle pool buffers or allocator slack.
    public var peakTensorMb: Double?

    enum CodingKeys: String, CodingKey {
        case name, runs, cpuMs = "cpu_ms"
        case medianMs = "median_ms", minMs = "min_ms", maxMs = "max_ms"
        case flops, gflops, cpuGflops = "cpu_gflops", peakPct = "peak_pct", peakRssMb = "peak_rss_mb", peakTensorMb = "peak_tensor_mb"
    }

    /// (max − min) / median: the run-to-run noise of this case.
    public var spread: Double { medianMs > 0 ? (maxMs - minMs) / medianMs : 0 }
}

/// How long each case runs.
public struct BenchOptions: Sendable {
    /// Untimed calls before timing.
    public var warmups = 1
    /// Timed calls: at least `minRuns`, more until `minSeconds` of timed work, at most `maxRuns`.
    public var minRuns = 5
    public var minSeconds = 1.0
    public var maxRuns = 1000

    public init(warmups: Int = 1, minRuns: Int = 5, minSeconds: Double = 1.0, maxRuns: Int = 1000) {
        self.warmups = warmups
        self.minRuns = minRuns
        self.minSeconds = minSeconds
        self.maxRuns = maxRuns
    }
}

public enum BenchRunner {
    /// Sets up `benchCase`, warms up, times it and reads its peak RSS. `peakGflops` (from the
    /// `peak` case) turns GFLOP/s into a share of the machine's ceiling.
    public static func run(_ benchCase: BenchCase, options: BenchOptions = BenchOptions(), peakGflops: Double? = nil) -> BenchResult {
        // Buffers the previous case left in the tensor pool would count
        // towards this case's peak: hand them back to the system first.
        StoragePool.drain()
        StoragePool.resetPeak()
        resetPeakRSS()
        var times = [Double]()
        var cpuTimes = [Double]()
        var flops = benchCase.flops
        do {
            let body = benchCase.make()
            flops = warmUp(benchCase, body, times: options.warmups) ?? flops
            var total = 0.0
            while times.count < options.maxRuns && (times.count < options.minRuns || total < options.minSeconds) {
                let (ms, cpuMs) = timedCall(body)
                times.append(ms)
                cpuTimes.append(cpuMs)
                total += ms / 1e3
            }
        }
        return summary(benchCase, flops: flops, times: times, cpuTimes: cpuTimes, peakGflops: peakGflops,
                       peakRssMb: peakRSSMegabytes(), peakTensorMb: Double(StoragePool.peakLiveBytes) / Double(1 << 20))
    }

    /// Calls `body` `times` times untimed; for a case that `countsFLOPs`, at least once, the
    /// first call under `FLOPCounting.count`, whose total it returns (nil otherwise).
    static func warmUp(_ benchCase: BenchCase, _ body: () -> Void, times: Int) -> Double? {
        var counted: Double?
        for i in 0..<max(times, benchCase.countsFLOPs ? 1 : 0) {
            if i == 0 && benchCase.countsFLOPs {
                counted = FLOPCounting.count(body).flops.total
            } else {
                body()
            }
        }
        return counted
    }

    /// Wall and CPU milliseconds of one call of `body`.
    static func timedCall(_ body: () -> Void) -> (ms: Double, cpuMs: Double) {
        let cpuStart = processCPUSeconds()
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        return (ms, (processCPUSeconds() - cpuStart) * 1e3)
    }

    /// A case's result from its timed calls: median/min/max, median CPU time, and the FLOP-based
    /// figures where the case's flops are known.
    static func summary(
        _ benchCase: BenchCase, flops: Double?, times: [Double], cpuTimes: [Double], peakGflops: Double?, peakRssMb: Double?,
        peakTensorMb: Double?
    ) -> BenchResult {
        let times = times.sorted()
        let median = BenchRunner.median(times)
        var result = BenchResult(name: benchCase.name, medianMs: median, minMs: times.first!, maxMs: times.last!,
                                 runs: times.count, cpuMs: BenchRunner.median(cpuTimes.sorted()), peakRssMb: peakRssMb,
                                 peakTensorMb: peakTensorMb)
        if let flops, flops > 0 {
            result.flops = flops
            let gflops = flops / (median / 1e3) / 1e9
            result.gflops = gflops
            if result.cpuMs > 0 { result.cpuGflops = flops / (result.cpuMs / 1e3 / Double(Parallel.threads)) / 1e9 }
            if let peakGflops, peakGflops > 0 { result.peakPct = 100 * gflops / peakGflops }
        }
        return result
    }

    /// Sets up every case, warms each up, then runs `rounds` rounds in which every case is called
    /// once, the order rotating by one case per round. On a shared machine whose speed drifts
    /// over seconds, cases compared this way see the same conditions, so their ratios are far
    /// less noisy than those of cases timed one after the other. Returns one result per case
    /// (no peak RSS: the cases share the process) and `perRound[r][i]`, case i's ms in round r.
    public static func interleaved(
        _ cases: [BenchCase], rounds: Int, warmups: Int = 1, peakGflops: Double? = nil
    ) -> (results: [BenchResult], perRound: [[Double]]) {
        StoragePool.drain()
        StoragePool.resetPeak()
        let bodies = cases.map { $0.make() }
        let flops = cases.indices.map { i in warmUp(cases[i], bodies[i], times: warmups) ?? cases[i].flops }
        var perRound = [[Double]](repeating: [Double](repeating: 0, count: cases.count), count: rounds)
        var cpu = [[Double]](repeating: [], count: cases.count)
        for r in 0..<rounds {
            for k in 0..<cases.count {
                let i = (k + r) % cases.count
                let (ms, cpuMs) = timedCall(bodies[i])
                perRound[r][i] = ms
                cpu[i].append(cpuMs)
            }
        }
        let results = cases.indices.map { i in
            summary(cases[i], flops: flops[i], times: perRound.map { $0[i] }, cpuTimes: cpu[i], peakGflops: peakGflops, peakRssMb: nil,
                    peakTensorMb: nil)
        }
        return (results, perRound)
    }

    static func median(_ sorted: [Double]) -> Double {
        let n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }

    /// User + system CPU time of the whole process so far, seconds.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    // MARK: peak RSS

    /// Writing 5 to /proc/self/clear_refs resets the process's VmHWM to its current RSS (Linux).
    static func resetPeakRSS() {
        if let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
            handle.write(Data("5".utf8))
            try? handle.close()
        }
    }

    /// VmHWM from /proc/self/status, in MB.
    static func peakRSSMegabytes() -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first
            return kb.map { $0 / 1024 }
        }
        return nil
    }

    // MARK: output

    /// One line naming the CPU (/proc/cpuinfo "model name"), the worker count and the
    /// instruction set the kernels were compiled for.
    public static func machineSummary() -> String {
        "CPU: \(cpuModel()) | threads: \(Parallel.threads) | ISA: \(instructionSet())"
    }

    static func cpuModel() -> String {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in info.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }

    /// The architecture, the vector extensions the kernels were compiled for and block their
    /// registers for (`VectorRegisters`: `-target-cpu native` by default, another target with
    /// `MORPHOSEG_TARGET_CPU`), and those of this CPU (/proc/cpuinfo), which may be more.
    static func instructionSet() -> String {
        #if arch(x86_64)
        let arch = "x86_64"
        #elseif arch(arm64)
        let arch = "arm64"
        #else
        let arch = "other"
        #endif
        let flags = VectorRegisters.cpuFlags()
        let cpu: String
        if flags.contains("avx512f") {
            cpu = "AVX-512F"
        } else if flags.contains("avx2") && flags.contains("fma") {
            cpu = "AVX2+FMA"
        } else if flags.isEmpty {
            cpu = "unknown vector extensions"
        } else {
            cpu = "no AVX2/AVX-512"
        }
        return "\(arch), kernels compiled for \(VectorRegisters.compiledISA); this CPU has \(cpu)"
    }

    public static func tableHeader() -> String {
        "| case | median ms | min ms | max ms | runs | CPU use | GFLOP/s | % peak | GFLOP/s on CPU time | peak RSS MB | peak tensors MB |\n"
            + "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    }

    public static func tableRow(_ r: BenchResult) -> String {
        func f(_ v: Double?, _ digits: Int) -> String { v.map { String(format: "%.\(digits)f", $0) } ?? "-" }
        // CPU use: CPU time over wall time per worker; below ~95 % the case shared its cores.
        let use = r.medianMs > 0 ? 100 * r.cpuMs / (r.medianMs * Double(Parallel.threads)) : 0
        return "| \(r.name) | \(f(r.medianMs, 3)) | \(f(r.minMs, 3)) | \(f(r.maxMs, 3)) | \(r.runs) | "
            + "\(f(use, 0)) % | \(f(r.gflops, 1)) | \(f(r.peakPct, 1)) | \(f(r.cpuGflops, 1)) | \(f(r.peakRssMb, 0)) | \(f(r.peakTensorMb, 0)) |"
    }

    /// A JSON list of `{"name", "median_ms", "min_ms", "max_ms", "flops", "gflops", "peak_pct",
    /// "peak_rss_mb", "runs", "cpu_ms", "cpu_gflops"}` in that key order; the FLOP-based keys
    /// only where the case's flops are known, peak_rss_mb only where /proc is readable.
    public static func json(_ results: [BenchResult]) -> String {
        func number(_ v: Double) -> String { v.isFinite ? String(format: "%.6g", v) : "null" }
        func string(_ s: String) -> String {
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        let objects = results.map { r -> String in
            var fields = [("name", string(r.name)), ("median_ms", number(r.medianMs)),
                          ("min_ms", number(r.minMs)), ("max_ms", number(r.maxMs))]
            if let v = r.flops { fields.append(("flops", number(v))) }
            if let v = r.gflops { fields.append(("gflops", number(v))) }
            if let v = r.peakPct { fields.append(("peak_pct", number(v))) }
            if let v = r.peakRssMb { fields.append(("peak_rss_mb", number(v))) }
            if let v = r.peakTensorMb { fields.append(("peak_tensor_mb", number(v))) }
            fields.append(("runs", String(r.runs)))
            fields.append(("cpu_ms", number(r.cpuMs)))
            if let v = r.cpuGflops { fields.append(("cpu_gflops", number(v))) }
            return "  {" + fields.map { "\(string($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
        }
        return "[\n" + objects.joined(separator: ",\n") + "\n]"
    }
}
