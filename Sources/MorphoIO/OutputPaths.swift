import Foundation

/// The data-safety rule every command that writes files follows, checked before anything is read
/// or written: no output is one of the inputs, and no two outputs are the same file. Paths are
/// compared after resolving them (relative paths, `.` and `..`, symbolic links), so
/// `--output ./x.nii.gz` cannot overwrite `--input x.nii.gz`, nor a link to it.
public enum OutputPaths {
    /// `path` made absolute, standardised, with symbolic links resolved, including those of its
    /// folder when the file itself does not exist yet.
    public static func resolved(_ path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let folder = url.deletingLastPathComponent().resolvingSymlinksInPath()
        return folder.appendingPathComponent(url.lastPathComponent).resolvingSymlinksInPath().standardizedFileURL.path
    }

    /// Throws when an output resolves to an input or to another output.
    ///
    /// - Parameters:
    ///   - inputs: every file (or folder) the command reads.
    ///   - outputs: every file (or folder) it writes, with the option that names it (`--output`).
    /// - Throws: `MorphoIOError.outputIsInput`, `MorphoIOError.outputsCollide`.
    public static func checkDistinct(inputs: [String], outputs: [(option: String, path: String)]) throws {
        let readPaths = inputs.map { (path: $0, resolved: resolved($0)) }
        var written: [(option: String, resolved: String)] = []
        for output in outputs {
            let r = resolved(output.path)
            if let input = readPaths.first(where: { $0.resolved == r }) {
                throw MorphoIOError.outputIsInput(output: output.path, option: output.option, input: input.path)
            }
            if let other = written.first(where: { $0.resolved == r }) {
                throw MorphoIOError.outputsCollide(path: output.path, first: other.option, second: output.option)
            }
            written.append((output.option, r))
        }
    }

    /// Creates `folder` and its missing parents (like `mkdir -p`).
    ///
    /// - Throws: `MorphoIOError.writeFailed` naming `folder` and the reason in words: a part of
    ///   the path that is a file, or the system's message (permission denied, read-only file
    ///   system…), never a Foundation error code.
    public static func createFolder(_ folder: String) throws {
        var prefix = folder.hasPrefix("/") ? "/" : ""
        for component in folder.split(separator: "/") {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + component
            var st = stat()
            if stat(prefix, &st) == 0 {
                guard (st.st_mode & S_IFMT) == S_IFDIR else {
                    throw MorphoIOError.writeFailed(path: folder, reason: "\(prefix) is a file, not a folder")
                }
                continue
            }
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw MorphoIOError.writeFailed(path: folder, reason: "cannot create \(prefix): \(String(cString: strerror(errno)))")
            }
        }
    }
}

/// The outputs of one command, remembered as they were before it wrote anything, so that a
/// failure on a later output can remove the earlier ones this run wrote: a command's outputs
/// appear together or not at all.
///
/// Every writer in MorphoSeg renames a new file into place, so a file this run wrote is one whose
/// identity (device, inode, modification time) differs from the snapshot; files the run did not
/// reach are left as they were.
public struct OutputSet {
    private let before: [(path: String, identity: [Int]?)]

    public init(_ paths: [String]) { before = paths.map { ($0, Self.identity($0)) } }

    /// Removes each output whose file changed since `init`; returns the paths removed.
    @discardableResult
    public func removeWritten() -> [String] {
        before.filter { entry in Self.identity(entry.path).map { $0 != entry.identity } ?? false }
            .map(\.path).filter { unlink($0) == 0 }
    }

    static func identity(_ path: String) -> [Int]? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return [Int(st.st_dev), Int(st.st_ino), Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec)]
    }
}
