import Foundation
import MorphoKernels

extension Distributed {
    /// Runs `body` as this process's part of a command (`morphoseg train`, `register train`):
    /// launches the communicator (MPI when started by `mpirun`), sets `Parallel.threads` to
    /// `threads` or to this machine's cores shared between its ranks, and finalises MPI after
    /// `body` returns.
    ///
    /// When `body` throws: with one process the error is rethrown unchanged; with several every
    /// rank stops (`DataParallel.stop`), treating errors for which `collective` is true as met
    /// by all ranks at the same point (a non-finite loss of the all-reduced step).
    public static func run(threads: Int?, collective: (any Error) -> Bool, _ body: (DataParallel) throws -> Void) throws {
        let communicator: any Communicator
        do {
            communicator = try launch()
        } catch {
            // Every copy mpirun started meets this (a build without MPI): the first one reports.
            if let rank = launchedRank, rank != 0 { exit(1) }
            throw error
        }
        let parallel = DataParallel(communicator)
        Parallel.threads = threads ?? suggestedThreads
        do {
            try body(parallel)
        } catch {
            throw parallel.stop(after: error, collective: collective(error))
        }
        parallel.communicator.finalize()
    }
}
