import ArgumentParser

/// The compute options every command takes (`@OptionGroup var compute: ComputeOptions`): today the
/// number of worker threads. Single-process commands apply them with
/// `ComputeSettings.apply(threads:)` (MorphoTrain); the training commands pass `threads` to
/// `Distributed.run`, which shares the cores out between the MPI ranks of one machine when it is nil.
struct ComputeOptions: ParsableArguments {
    @Option(name: .long, help: "Compute threads (default: all cores; the train commands share them out between the MPI ranks on one machine).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }
}
