import MorphoKernels

/// How much of the machine a command computes with: the number of worker threads the kernels
/// (`MorphoKernels.Parallel`) split their loops over. Commands set it once, before any work,
/// through `apply(threads:)`; a distributed run (`Distributed.run(threads:…)`) sets it itself.
public enum ComputeSettings {
    /// Worker threads the kernels use now (all active cores unless set).
    public static var threads: Int { Parallel.threads }

    /// Sets the kernels' worker threads to `threads`; nil keeps the current setting (all active
    /// cores by default).
    ///
    /// - Precondition: `threads` is nil or at least 1 (the CLI's `--threads` is validated so).
    public static func apply(threads: Int?) {
        guard let threads else { return }
        precondition(threads >= 1, "ComputeSettings: threads must be at least 1, got \(threads)")
        Parallel.threads = threads
    }
}
