/// A group of processes that train one network together: each knows its `rank` in `0..<size`
/// and takes part in collective operations, which every rank must call in the same order with
/// buffers of the same length (a rank that skips one leaves the others waiting for ever).
///
/// Two implementations: `SingleProcessCommunicator` (size 1, every collective is the identity)
/// and, in builds with Open MPI, `MPICommunicator` over `MPI_COMM_WORLD`. `Distributed.launch()`
/// picks the one matching how the process was started.
public protocol Communicator: AnyObject {
    /// This process's index, `0..<size`; rank 0 writes the run's files.
    var rank: Int { get }
    /// Number of processes.
    var size: Int { get }
    /// A short name for messages: `single process` or `Open MPI rank 1 of 4`.
    var name: String { get }

    /// Replaces every element by its sum over all ranks, in place.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>)
    /// Replaces every element by its sum over all ranks, in place.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Replaces every element by its maximum over all ranks, in place (NaN handling is MPI's:
    /// do not reduce NaN with it; reduce a flag instead).
    func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Copies `root`'s bytes into every rank's buffer.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int)
    /// Returns once every rank has called it.
    func barrier()
    /// Stops every rank now: prints `message` (prefixed with the rank when there are several)
    /// to standard error and asks the launcher to end the job with exit status `code`.
    func abort(_ message: String, code: Int32) -> Never
    /// Ends the collective part of the run (MPI_Finalize); call once, after the last collective,
    /// on every rank. Later collectives are programming errors.
    func finalize()
}

extension Communicator {
    /// True on the rank that writes checkpoints, metrics, progress and plots.
    public var isRoot: Bool { rank == 0 }

    /// Sum over all ranks of a `[Float]`, in place.
    public func allReduceSum(_ values: inout [Float]) {
        guard size > 1 else { return }
        values.withUnsafeMutableBufferPointer { allReduceSum($0) }
    }

    /// Sum over all ranks of a `[Double]`, in place.
    public func allReduceSum(_ values: inout [Double]) {
        guard size > 1 else { return }
        values.withUnsafeMutableBufferPointer { allReduceSum($0) }
    }

    /// Mean over all ranks of a `[Float]`, in place (the sum divided by `size`).
    public func allReduceAverage(_ values: inout [Float]) {
        guard size > 1 else { return }
        allReduceSum(&values)
        let scale = 1 / Float(size)
        values.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] *= scale } }
    }

    /// Sum over all ranks of one number.
    public func allReduceSum(_ value: Double) -> Double {
        var v = [value]
        allReduceSum(&v)
        return v[0]
    }

    /// True on every rank when `flag` is true on at least one.
    public func anyRank(_ flag: Bool) -> Bool {
        guard size > 1 else { return flag }
        var v = [flag ? 1.0 : 0.0]
        v.withUnsafeMutableBufferPointer { allReduceMax($0) }
        return v[0] > 0
    }

    /// Copies `root`'s array into every rank's. Lengths may differ before the call: the length
    /// is broadcast first.
    public func broadcast(_ values: inout [Float], root: Int = 0) {
        guard size > 1 else { return }
        var n = UInt64(values.count)
        withUnsafeMutableBytes(of: &n) { broadcast($0, root: root) }
        if values.count != Int(n) { values = [Float](repeating: 0, count: Int(n)) }
        values.withUnsafeMutableBytes { broadcast($0, root: root) }
    }

    /// `root`'s string on every rank (UTF-8 bytes, any length).
    public func broadcast(_ text: String, root: Int = 0) -> String {
        guard size > 1 else { return text }
        var bytes = Array(text.utf8)
        var n = UInt64(bytes.count)
        withUnsafeMutableBytes(of: &n) { broadcast($0, root: root) }
        if bytes.count != Int(n) { bytes = [UInt8](repeating: 0, count: Int(n)) }
        bytes.withUnsafeMutableBytes { broadcast($0, root: root) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
