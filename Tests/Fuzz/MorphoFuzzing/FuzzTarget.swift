/// The fuzz targets: each turns arbitrary bytes into what a user could hand MorphoSeg and runs
/// the reader that takes it. Outcomes are values or thrown errors; anything else (a trap, a
/// sanitizer report, a hang) is what the fuzzer looks for.
///
/// The libFuzzer drivers (`Tests/Fuzz/Drivers/fuzz-<name>`) call `run`; the suite replays the
/// saved inputs of `Tests/Fuzz/regressions/<name>/` through the same `run` without
/// instrumentation (`MorphoFuzzingTests`).
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// NIfTI reader, header and voxels, plain, gzip and `.hdr`/`.img` pair (`NIfTIFuzzing`).
    case nifti
    /// Config loader, YAML text → `TaskConfig` (`ConfigFuzzing`).
    case config
    /// Safetensors decoder, then the checkpoint reader and its embedded configs (`SafeTensorsFuzzing`).
    case safetensors

    /// Runs one input; one outcome per way the input was presented to the code under test.
    @discardableResult
    public func run(_ bytes: UnsafeRawBufferPointer) -> [FuzzOutcome] {
        switch self {
        case .nifti: NIfTIFuzzing.run(bytes)
        case .config: [ConfigFuzzing.run(bytes)]
        case .safetensors: SafeTensorsFuzzing.run(bytes)
        }
    }

    /// `run` on a byte array (the replay tests).
    @discardableResult
    public func run(_ bytes: [UInt8]) -> [FuzzOutcome] {
        bytes.withUnsafeBytes { run($0) }
    }
}

/// What one reader made of one input.
public enum FuzzOutcome: Equatable, Sendable {
    /// The input was read; a short description of the value (shape, task, tensor count…).
    case accepted(String)
    /// The reader threw; the error's text as a user would see it.
    case rejected(String)

    /// Runs `body`, turning its value or its error into an outcome.
    static func of(_ body: () throws -> String) -> FuzzOutcome {
        do { return .accepted(try body()) } catch { return .rejected("\(error)") }
    }
}
