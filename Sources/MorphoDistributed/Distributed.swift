import Foundation

/// How this process was started, and the communicator that goes with it.
///
/// `mpirun` (Open MPI) puts `OMPI_COMM_WORLD_SIZE`, `OMPI_COMM_WORLD_RANK`,
/// `OMPI_COMM_WORLD_LOCAL_SIZE` and `PMIX_RANK` in each process's environment. Only then does
/// `launch()` initialise MPI; a plain run of the same binary is one process and needs no MPI
/// library at run time beyond the shared object it links.
public enum Distributed {
    /// True when this build links Open MPI (Package.swift found `mpi.h`; `MORPHOSEG_MPI=0` at
    /// build time turns it off).
    public static var isMPIBuilt: Bool {
        #if MORPHOSEG_MPI
        true
        #else
        false
        #endif
    }

    /// The Open MPI version line, or nil in a build without MPI.
    public static var libraryVersion: String? {
        #if MORPHOSEG_MPI
        MPICommunicator.libraryVersion
        #else
        nil
        #endif
    }

    /// True when `mpirun` started this process.
    public static var isLaunchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil
    }

    /// This process's rank as the launcher announced it (`OMPI_COMM_WORLD_RANK` or `PMIX_RANK`),
    /// nil without one.
    public static var launchedRank: Int? {
        let env = ProcessInfo.processInfo.environment
        return (env["OMPI_COMM_WORLD_RANK"] ?? env["PMIX_RANK"]).flatMap { Int($0) }
    }

    /// The world size the launcher announced (`OMPI_COMM_WORLD_SIZE`), nil without one.
    public static var launchedSize: Int? {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"].flatMap { Int($0) }
    }

    /// Ranks of this job on this machine (`OMPI_COMM_WORLD_LOCAL_SIZE`, 1 without `mpirun`):
    /// the cores are shared between them.
    public static var localSize: Int {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap { Int($0) }.map { max(1, $0) } ?? 1
    }

    /// Compute threads per rank when none are asked for: this machine's cores shared evenly
    /// between the ranks placed on it (at least 1), so N ranks on one host do not oversubscribe it.
    public static var suggestedThreads: Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount / localSize)
    }

    nonisolated(unsafe) private static var launched: (any Communicator)?

    /// The communicator of this process: `MPICommunicator` when started by `mpirun` in a build
    /// with MPI, `SingleProcessCommunicator` otherwise. Repeated calls return the same object
    /// (MPI is initialised once per process). Call it from the main thread.
    ///
    /// - Throws: `DistributedError.notBuiltWithMPI` when `mpirun` started several copies of a
    ///   build without MPI (each would train alone and overwrite the others' files);
    ///   `.mpi` when MPI cannot be initialised.
    public static func launch() throws(DistributedError) -> any Communicator {
        if let launched { return launched }
        let communicator: any Communicator
        if isLaunchedByMPI {
            #if MORPHOSEG_MPI
            communicator = try MPICommunicator()
            #else
            let size = launchedSize ?? 0
            guard size == 1 else { throw .notBuiltWithMPI(ranks: size) }
            communicator = SingleProcessCommunicator()
            #endif
        } else {
            communicator = SingleProcessCommunicator()
        }
        launched = communicator
        return communicator
    }
}

/// Errors of distributed runs, each naming what to change.
public enum DistributedError: Error, CustomStringConvertible, Equatable {
    /// `mpirun` started `ranks` processes (0: unknown) of a binary built without Open MPI.
    case notBuiltWithMPI(ranks: Int)
    /// An MPI call failed with the library's message.
    case mpi(call: String, message: String)
    /// The global batch (config key `key`) has fewer samples than there are ranks.
    case batchSmallerThanRanks(key: String, batchSize: Int, ranks: Int)

    public var description: String {
        switch self {
        case .notBuiltWithMPI(let ranks):
            "started by mpirun\(ranks > 0 ? " with \(ranks) ranks" : ""), but this morphoseg was built without Open MPI "
                + "(no mpi.h at build time); install libopenmpi-dev and rebuild, or run it without mpirun"
        case .mpi(let call, let message):
            "\(call) failed: \(message)"
        case .batchSmallerThanRanks(let key, let batchSize, let ranks):
            "\(key) is \(batchSize), fewer samples than the \(ranks) MPI ranks; raise it to at least \(ranks) or use fewer ranks"
        }
    }
}
