import Foundation

/// The one place config files are read from disk. Every loader (`TaskConfig.load` and the older
/// per-task ones) goes through `text(at:)`, which counts its reads so that a test can pin how
/// often a run reads its YAML.
enum ConfigFile {
    /// The UTF-8 text of the config file at `path`.
    ///
    /// - Throws: `MorphoTrainError.fileNotFound` (role "config"), `.configSyntax` when the file is
    ///   not UTF-8.
    static func text(at path: String) throws -> String {
        reads.increment()
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            throw MorphoTrainError.config(file: path, key: "", message: "is a folder, not a config file")
        }
        guard FileManager.default.fileExists(atPath: path),
              let data = FileManager.default.contents(atPath: path) else {
            throw MorphoTrainError.fileNotFound(path: path, role: "config")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw MorphoTrainError.configSyntax(file: path, message: "not UTF-8 text")
        }
        return text
    }

    /// The run name a file gives when it has no `name:`: its stem (`Configs/demo-seg.yaml` →
    /// `demo-seg`).
    static func defaultName(_ path: String) -> String {
        URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
    }

    /// How many times `text(at:)` has been called in this process.
    static var readCount: Int { reads.value }

    private static let reads = Counter()

    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0

        func increment() { lock.withLock { count += 1 } }
        var value: Int { lock.withLock { count } }
    }
}
