// swift-tools-version:6.0
// MorphoSeg: medical-image segmentation and registration networks trained on NIfTI volumes,
// in pure Swift on the CPU. The targets mirror the architecture; arrows point down only:
//   morphoseg → MorphoBench/MorphoTrain → MorphoLosses/MorphoNN → MorphoTensor → MorphoKernels
//   MorphoIO (NIfTI, safetensors, PNG) is used by MorphoTrain and the CLI; MorphoConformance runs
//   the golden loss fixtures through the same library code.
import PackageDescription

/// Hot loops are only fast when the compiler targets this CPU: without it each lane of
/// `addingProduct` becomes a libm `fmaf` call (see README, "Performance").
let optimize: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "native", "-enforce-exclusivity=unchecked"]),
]
/// libnifti's headers live in /usr/include/nifti and include <znzlib.h> from there.
let niftiInclude: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I/usr/include/nifti"])]

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
        .target(name: "MorphoKernels", swiftSettings: optimize),
        .target(name: "MorphoTensor", dependencies: ["MorphoKernels"], swiftSettings: optimize),
        .target(name: "MorphoNN", dependencies: ["MorphoTensor", "MorphoKernels"], swiftSettings: optimize),
        .target(name: "MorphoLosses", dependencies: ["MorphoTensor", "MorphoKernels"], swiftSettings: optimize),
        .target(name: "MorphoConformance", dependencies: ["MorphoLosses", "MorphoNN"], swiftSettings: optimize),
        .target(
            name: "MorphoTrain",
            dependencies: ["MorphoIO", "MorphoNN", "MorphoLosses", "MorphoKernels", .product(name: "Yams", package: "Yams")],
            swiftSettings: optimize + niftiInclude),
        .target(
            name: "MorphoBench",
            dependencies: ["MorphoKernels", "MorphoTensor", "MorphoNN", "MorphoLosses", "MorphoTrain"],
            swiftSettings: optimize + niftiInclude),
        .executableTarget(
            name: "morphoseg",
            dependencies: [
                "MorphoIO", "MorphoTensor", "MorphoNN", "MorphoLosses", "MorphoTrain", "MorphoBench", "MorphoConformance",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: optimize + niftiInclude),
        .testTarget(
            name: "MorphoIOTests", dependencies: ["MorphoIO"], exclude: ["Data"], swiftSettings: optimize + niftiInclude),
        .testTarget(name: "MorphoKernelsTests", dependencies: ["MorphoKernels"], exclude: ["Fixtures"], swiftSettings: optimize),
        .testTarget(name: "MorphoTensorTests", dependencies: ["MorphoTensor"], swiftSettings: optimize),
        .testTarget(name: "MorphoNNTests", dependencies: ["MorphoNN", "MorphoTensor"], swiftSettings: optimize),
        .testTarget(
            name: "MorphoLossesTests", dependencies: ["MorphoLosses", "MorphoConformance", "MorphoNN", "MorphoTensor"],
            exclude: ["Fixtures"], swiftSettings: optimize),
        .testTarget(name: "MorphoTrainTests", dependencies: ["MorphoTrain", "MorphoIO"], swiftSettings: optimize + niftiInclude),
    ]
)
