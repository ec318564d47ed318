// swift-tools-version:6.0
// MorphoSeg: medical-image segmentation and registration networks trained on NIfTI volumes,
// in pure Swift on the CPU. The targets mirror the architecture; arrows point down only:
//   morphoseg → MorphoBench/MorphoTrain → MorphoLosses/MorphoNN → MorphoTensor → MorphoKernels
//   → CTargetFeatures (the compiled-for vector extensions, read by MorphoKernels' VectorRegisters)
//   and CSpinHint (the processor's spin-wait hint, for MorphoKernels' worker pool)
//   MorphoIO (NIfTI, safetensors, PNG) is used by MorphoTrain and the CLI; MorphoConformance runs
//   the golden loss fixtures through the same library code. MorphoDistributed (data-parallel
//   training over Open MPI, or a single process) sits between MorphoTrain and MorphoNN.
import Foundation
import PackageDescription

/// The CPU the Swift code is compiled for: this machine's (`native`, the default) unless
/// `MORPHOSEG_TARGET_CPU` names another, e.g. `x86-64-v3` (AVX2 + FMA, no AVX-512) to build and
/// measure the AVX2 kernels on an AVX-512 machine (`make bench-avx2`, README "Performance").
/// CPU names (`haswell`, `znver3`, …) go to `-target-cpu`; the x86-64 levels (`x86-64-v2` … `v4`)
/// are not CPU names to swiftc's Clang importer, which accepts them only as `-march`, and Swift's
/// code generation takes its CPU and features from that importer, so they go as `-Xcc -march=`.
/// The kernels size their register blocks for what was compiled (`VectorRegisters`, through
/// `CTargetFeatures`), not for the CPU that runs them.
/// SwiftPM re-evaluates this manifest when the variable changes, but the products of one build
/// folder are those of the last setting built there: build each setting into its own folder
/// (`--scratch-path .build-avx2`) so that `.build/release/morphoseg` stays the native one.
let targetCPU = ProcessInfo.processInfo.environment["MORPHOSEG_TARGET_CPU"].flatMap { $0.isEmpty ? nil : $0 } ?? "native"
let targetCPUFlags = targetCPU.hasPrefix("x86-64-v") ? ["-Xcc", "-march=\(targetCPU)"] : ["-target-cpu", targetCPU]

/// Hot loops are only fast when the compiler targets the CPU: without it each lane of
/// `addingProduct` becomes a libm `fmaf` call (see README, "Performance").
let optimize: [SwiftSetting] = [
    .unsafeFlags(targetCPUFlags + ["-enforce-exclusivity=unchecked"]),
]
/// libnifti's headers live in /usr/include/nifti and include <znzlib.h> from there.
let niftiInclude: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I/usr/include/nifti"])]

/// Open MPI (Debian: libopenmpi-dev) for `mpirun -np N morphoseg train`. Built only when its
/// header is on this machine; `MORPHOSEG_MPI=0 swift build …` leaves it out even then. Without
/// it MorphoDistributed has only its single-process communicator and nothing needs MPI.
/// SwiftPM caches this manifest's result per environment: after installing Open MPI, build once
/// with `MORPHOSEG_MPI=1` (as `make test` does) for the new header to be seen.
let openMPI: (include: String, lib: String)? = {
    let flag = ProcessInfo.processInfo.environment["MORPHOSEG_MPI"]?.lowercased()
    if let flag, ["0", "off", "no", "false"].contains(flag) { return nil }
    for triple in ["x86_64-linux-gnu", "aarch64-linux-gnu"] {
        let root = "/usr/lib/\(triple)/openmpi"
        if FileManager.default.fileExists(atPath: root + "/include/mpi.h") { return (root + "/include", root + "/lib") }
    }
    return nil
}()
let mpiTargets: [Target] = openMPI.map { mpi in
    [.target(
        name: "CMPI",
        cSettings: [.unsafeFlags(["-I", mpi.include])],
        linkerSettings: [.unsafeFlags(["-L", mpi.lib]), .linkedLibrary("mpi")])]
} ?? []
let mpiDependency: [Target.Dependency] = openMPI == nil ? [] : ["CMPI"]
let mpiDefine: [SwiftSetting] = openMPI == nil ? [] : [.define("MORPHOSEG_MPI")]

/// libFuzzer drivers (`make fuzz`), one executable per fuzz target, declared only when
/// `MORPHOSEG_FUZZ=1`: they are built for libFuzzer and AddressSanitizer (the Makefile's `FUZZ_FLAGS`)
/// into their own build folder, and an ordinary `swift build`/`swift test` neither sees nor compiles them. The
/// entry points they drive (`MorphoFuzzing`) are always declared, so the suite replays the saved
/// crash inputs through the same code without instrumentation.
let fuzzDrivers = ["nifti", "config", "safetensors"]
let fuzzTargets: [Target] = ProcessInfo.processInfo.environment["MORPHOSEG_FUZZ"] == "1"
    ? fuzzDrivers.map { .executableTarget(name: "fuzz-\($0)", dependencies: ["MorphoFuzzing"], path: "Tests/Fuzz/Drivers/fuzz-\($0)") }
    : []

let package = Package(
    name: "MorphoSeg",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "morphoseg", targets: ["morphoseg"]),
        .library(name: "MorphoSeg", targets: ["MorphoIO", "MorphoTensor", "MorphoNN", "MorphoLosses", "MorphoTrain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .target(
            name: "CNIfTI",
            cSettings: [.unsafeFlags(["-I/usr/include/nifti"])],
            linkerSettings: [.linkedLibrary("nifti2"), .linkedLibrary("znz"), .linkedLibrary("z"), .linkedLibrary("m")]),
        .target(name: "MorphoIO", dependencies: ["CNIfTI"], swiftSettings: optimize + niftiInclude),
        // Header-only: the compiled-for vector extensions as Clang macros (see `targetCPU`).
        .target(name: "CTargetFeatures"),
        // Header-only: the PAUSE/YIELD hint the worker pool's waiting loops issue.
        .target(name: "CSpinHint"),
        .target(name: "MorphoKernels", dependencies: ["CTargetFeatures", "CSpinHint"], swiftSettings: optimize),
        .target(name: "MorphoTensor", dependencies: ["MorphoKernels"], swiftSettings: optimize),
        .target(name: "MorphoNN", dependencies: ["MorphoTensor", "MorphoKernels"], swiftSettings: optimize),
        .target(name: "MorphoLosses", dependencies: ["MorphoTensor", "MorphoKernels"], swiftSettings: optimize),
        .target(
            name: "MorphoDistributed", dependencies: ["MorphoNN", "MorphoTensor", "MorphoKernels"] + mpiDependency,
            swiftSettings: optimize + mpiDefine),
        .target(name: "MorphoConformance", dependencies: ["MorphoLosses", "MorphoNN"], swiftSettings: optimize),
        .target(
            name: "MorphoTrain",
            dependencies: [
                "MorphoIO", "MorphoNN", "MorphoLosses", "MorphoKernels", "MorphoDistributed", .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: optimize + niftiInclude),
        .target(
            name: "MorphoBench",
            dependencies: ["MorphoKernels", "MorphoTensor", "MorphoNN", "MorphoLosses", "MorphoTrain"],
            swiftSettings: optimize + niftiInclude),
        .executableTarget(
            name: "morphoseg",
            dependencies: [
                "MorphoIO", "MorphoTensor", "MorphoNN", "MorphoLosses", "MorphoTrain", "MorphoBench", "MorphoConformance",
                "MorphoDistributed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: optimize + niftiInclude),
        .executableTarget(
            name: "dataparallel-probe",
            dependencies: ["MorphoDistributed", "MorphoNN", "MorphoLosses", "MorphoTensor", "MorphoKernels", "MorphoTrain"],
            swiftSettings: optimize + niftiInclude),
        // Shared by the test targets only (temporary folders, the tiny configs, the golden cases read
        // by MorphoConformance's reader). A regular target, because test targets cannot depend on
        // each other; it lives under Tests/ and is in no product, so MorphoSeg never ships it.
        .target(
            name: "MorphoTestSupport", dependencies: ["MorphoConformance", "MorphoTensor"], path: "Tests/MorphoTestSupport",
            exclude: ["Fixtures"]),
        .testTarget(
            name: "MorphoIOTests", dependencies: ["MorphoIO", "MorphoTestSupport"], exclude: ["Data"],
            swiftSettings: optimize + niftiInclude),
        .testTarget(
            name: "MorphoKernelsTests", dependencies: ["MorphoKernels", "MorphoConformance", "MorphoTestSupport"],
            swiftSettings: optimize),
        .testTarget(name: "MorphoTensorTests", dependencies: ["MorphoTensor", "MorphoTestSupport"], swiftSettings: optimize),
        .testTarget(name: "MorphoNNTests", dependencies: ["MorphoNN", "MorphoTensor", "MorphoTestSupport"], swiftSettings: optimize),
        .testTarget(
            name: "MorphoLossesTests", dependencies: ["MorphoLosses", "MorphoConformance", "MorphoNN", "MorphoTensor", "MorphoTestSupport"],
            swiftSettings: optimize),
        .testTarget(
            name: "MorphoDistributedTests",
            dependencies: ["MorphoDistributed", "MorphoNN", "MorphoTensor", "MorphoTrain", "MorphoTestSupport"],
            swiftSettings: optimize + mpiDefine),
        .testTarget(
            name: "MorphoTrainTests", dependencies: ["MorphoTrain", "MorphoIO", "MorphoTestSupport"],
            swiftSettings: optimize + niftiInclude),
        .testTarget(name: "MorphoBenchTests", dependencies: ["MorphoBench", "MorphoTensor"], swiftSettings: optimize),
        // The command line as a user meets it: runs the built `morphoseg` (next to the tests, as
        // `make test` builds it) in child processes.
        .testTarget(name: "morphosegTests", dependencies: ["MorphoIO", "MorphoTestSupport"], swiftSettings: optimize + niftiInclude),
        // The fuzz targets' entry points (Tests/Fuzz/README.md): bytes in, a value or an error out.
        .target(
            name: "MorphoFuzzing", dependencies: ["MorphoIO", "MorphoTrain", "CNIfTI"], path: "Tests/Fuzz/MorphoFuzzing",
            swiftSettings: niftiInclude),
        .testTarget(name: "MorphoFuzzingTests", dependencies: ["MorphoFuzzing", "MorphoTestSupport"]),
    ] + mpiTargets + fuzzTargets
)
