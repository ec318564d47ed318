import CTargetFeatures
import Foundation

/// The vector register file the kernels are blocked for: the one the binary was compiled for.
///
/// `Package.swift` compiles with `-target-cpu native` unless `MORPHOSEG_TARGET_CPU` names another
/// target, and `ConvVector` (`SIMD16<Float>`, 64 bytes) lowers to one zmm register when that
/// target has AVX-512F (32 of them) or to two ymm registers with AVX2 (16 ymm, so 8 whole
/// vectors). Register blocks sized for 32 zmm spill on every tap when the code is compiled for
/// ymm: the microkernels, the FMA peak loop and the Winograd products read `hasAVX512` or
/// `convVectors` to size theirs.
///
/// The choice follows the compiled code, not the CPU: an `x86-64-v3` binary on an AVX-512 CPU
/// runs ymm code and must use the AVX2 blocks. Swift has no `#if` on target features, so the
/// compiled extensions come from Clang's predefined macros read through `CTargetFeatures`: the
/// Clang importer of this module is configured with the same CPU and features as its code
/// generation (the latter takes them from the former), so the macros cannot disagree with the
/// instructions emitted. A build-setting define from `Package.swift` would instead need a table
/// of which CPU names have AVX-512, and `native` would still have to be resolved on the build
/// machine. A binary compiled for AVX-512 only starts on a CPU that has it, so the CPU flags
/// are only reported (`cpuHasAVX512`), never consulted for the blocks.
public enum VectorRegisters {
    /// Whether this binary's Swift code is compiled for AVX-512F (`SIMD16<Float>` in one zmm).
    public static let hasAVX512: Bool = MORPHOSEG_TARGET_AVX512F != 0

    /// Whether this binary's Swift code is compiled for AVX2 with FMA (ymm registers, fused
    /// multiply-add instructions); also true of AVX-512 builds.
    public static let hasAVX2FMA: Bool = MORPHOSEG_TARGET_AVX2 != 0 && MORPHOSEG_TARGET_FMA != 0

    /// Whether the CPU running the binary has AVX-512F (`/proc/cpuinfo`), whatever it was compiled for.
    public static let cpuHasAVX512: Bool = cpuFlags().contains("avx512f")

    /// Whole `ConvVector`s (16 floats) the register file holds: 32 with AVX-512, 8 otherwise.
    public static let convVectors: Int = hasAVX512 ? 32 : 8

    /// Registers per `ConvVector`: 1 zmm with AVX-512, 2 ymm with AVX2.
    public static let registersPerVector: Int = hasAVX512 ? 1 : 2

    /// The compiled vector extensions in words, e.g. "AVX2+FMA (16 ymm, 8 fp32 lanes)".
    public static var compiledISA: String {
        if hasAVX512 { return "AVX-512F (32 zmm, 16 fp32 lanes)" }
        if hasAVX2FMA { return "AVX2+FMA (16 ymm, 8 fp32 lanes)" }
        #if arch(x86_64)
        return "no AVX2+FMA (SSE; each FMA lane a libm call)"
        #else
        return "the architecture's baseline vectors"
        #endif
    }

    /// The `flags` line of /proc/cpuinfo, split on spaces (empty when unreadable).
    public static func cpuFlags() -> Set<Substring> {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: " "))
    }
}
