#if MORPHOSEG_MPI
import CMPI
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `MPI_COMM_WORLD` of Open MPI: the processes `mpirun -np N` started, on one machine or on the
/// hosts of a `--hostfile`.
///
/// MPI is initialised (thread level `MPI_THREAD_FUNNELED`: only the thread that created the
/// communicator calls MPI; `Parallel` compute threads may run meanwhile) by the first
/// instance and finalised by `finalize()` or, failing that, at process exit. Create it through
/// `Distributed.launch()`, which only does so when the process was started by `mpirun`.
/// An MPI call that reports an error stops every rank with the library's message (MPI's own
/// default handler, `MPI_ERRORS_ARE_FATAL`, normally does so first).
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int

    /// Initialises MPI (once per process) and reads this process's rank and the world size.
    ///
    /// - Throws: `DistributedError.mpi` when `MPI_Init_thread` fails.
    public init() throws(DistributedError) {
        if cmpi_is_initialized() == 0 {
            var provided: Int32 = 0
            let rc = cmpi_init(&provided)
            guard rc == 0 else { throw .mpi(call: "MPI_Init_thread", message: Self.errorText(rc)) }
            atexit { if cmpi_is_initialized() != 0 && cmpi_is_finalized() == 0 { cmpi_finalize() } }
        }
        var r: Int32 = 0, s: Int32 = 0
        _ = cmpi_rank(&r)
        _ = cmpi_size(&s)
        rank = Int(r)
        size = Int(s)
    }

    public var name: String { "Open MPI rank \(rank) of \(size)" }

    /// The Open MPI version line (`MPI_Get_library_version`).
    public static var libraryVersion: String {
        var text = [CChar](repeating: 0, count: 512)
        cmpi_library_version(&text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
        check(cmpi_allreduce_sum_float(base, buffer.count), "MPI_Allreduce(MPI_SUM, float)")
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
        check(cmpi_allreduce_sum_double(base, buffer.count), "MPI_Allreduce(MPI_SUM, double)")
    }

    public func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
        check(cmpi_allreduce_max_double(base, buffer.count), "MPI_Allreduce(MPI_MAX, double)")
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
        check(cmpi_broadcast_bytes(base, buffer.count, Int32(root)), "MPI_Bcast")
    }

    public func barrier() { check(cmpi_barrier(), "MPI_Barrier") }

    public func abort(_ message: String, code: Int32) -> Never {
        writeToStandardError("error (rank \(rank) of \(size)): \(message)\n")
        cmpi_abort(code)
        // MPI_Abort does not return in Open MPI; should a library do so, end this process at least.
        exit(code)
    }

    public func finalize() {
        if cmpi_is_initialized() != 0 && cmpi_is_finalized() == 0 { _ = cmpi_finalize() }
    }

    private func check(_ rc: Int32, _ call: String) {
        if rc != 0 { abort("\(call) failed: \(Self.errorText(rc))", code: 2) }
    }

    static func errorText(_ rc: Int32) -> String {
        var text = [CChar](repeating: 0, count: 512)
        cmpi_error_string(rc, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + " (code \(rc))"
    }
}
#endif
