import Foundation

/// The vector register file the kernels are blocked for.
///
/// `Package.swift` compiles with `-target-cpu native`, so a binary uses exactly the vector
/// extensions of the CPU it was built on, and `ConvVector` (`SIMD16<Float>`, 64 bytes) lowers to
/// one zmm register with AVX-512F (32 of them) or to two ymm registers with AVX2 (16 ymm, so 8
/// whole vectors). Register blocks sized for 32 zmm spill on every tap on an AVX2 machine (an
/// AMD Zen 3, say): the microkernels, the FMA peak loop and the Winograd products read
/// `convVectors` to size theirs. Detected once from the CPU flags (`/proc/cpuinfo`); a CPU
/// that cannot be read is taken as the smaller file (correct everywhere, only slower).
public enum VectorRegisters {
    /// Whether the CPU has AVX-512F (and so the build, with `-target-cpu native`, uses zmm).
    public static let hasAVX512: Bool = cpuFlags().contains("avx512f")

    /// Whole `ConvVector`s (16 floats) the register file holds: 32 with AVX-512, 8 otherwise.
    public static let convVectors: Int = hasAVX512 ? 32 : 8

    /// Registers per `ConvVector`: 1 zmm with AVX-512, 2 ymm with AVX2.
    public static let registersPerVector: Int = hasAVX512 ? 1 : 2

    /// The `flags` line of /proc/cpuinfo, split on spaces (empty when unreadable).
    static func cpuFlags() -> Set<Substring> {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: " "))
    }
}
