import Foundation

/// A private folder for the files the fuzz targets write their inputs to (the readers take
/// paths): in /dev/shm when there is one, so an execution costs no disk I/O. One per process,
/// removed at exit; file names are reused across executions.
enum ScratchFolder {
    static let path: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let folder = (base as NSString).appendingPathComponent("morphoseg-fuzz-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: ScratchFolder.path) }
        return folder
    }()

    /// `<folder>/<name>`, holding exactly `bytes` (an earlier file of that name is replaced).
    static func write(_ bytes: UnsafeRawBufferPointer, as name: String) -> String {
        let file = (path as NSString).appendingPathComponent(name)
        FileManager.default.createFile(atPath: file, contents: Data(bytes))
        return file
    }

    /// Removes `<folder>/<name>` if present.
    static func remove(_ name: String) {
        unlink((path as NSString).appendingPathComponent(name))
    }
}
