#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The communicator of a plain run: rank 0 of 1. Every collective leaves its buffer as it is,
/// so code written for several ranks runs unchanged (and bit for bit as before) in one process.
public final class SingleProcessCommunicator: Communicator {
    public init() {}

    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var name: String { "single process" }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {}
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {}
    public func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {}
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        precondition(root == 0, "broadcast from rank \(root) in a single process")
    }
    public func barrier() {}

    public func abort(_ message: String, code: Int32) -> Never {
        writeToStandardError("error: \(message)\n")
        exit(code)
    }

    public func finalize() {}
}

/// Writes `text` to standard error unbuffered (before the process is torn down).
func writeToStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { b in
        var offset = 0
        while offset < b.count {
            let n = write(2, b.baseAddress! + offset, b.count - offset)
            if n <= 0 { break }
            offset += n
        }
    }
}
