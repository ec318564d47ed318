import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The lock a live training run holds on its run folder: `<folder>/run.lock`, one line
/// `pid <pid> host <host>`, created exclusively (`O_CREAT | O_EXCL`) before the run writes
/// anything and removed when it ends.
///
/// Two runs into one folder would interleave `metrics.jsonl` and leave one run's config beside
/// the other's checkpoints; the second is refused with a message naming the holder. A lock left
/// by a killed run (its pid no longer exists on this host) is taken over with a warning on
/// stderr. A lock from another host cannot be checked and is never taken over: the message says
/// to remove it by hand once that run is gone.
public final class RunFolderLock {
    public static let fileName = "run.lock"

    public let path: String
    /// False when this process already held the lock (an inner `acquire` of the same run).
    private let owned: Bool

    private init(path: String, owned: Bool) {
        self.path = path
        self.owned = owned
    }

    deinit { release() }

    /// This process's line in the lock file.
    static var holderLine: String { "pid \(getpid()) host \(hostName)" }

    static var hostName: String {
        var buffer = [UInt8](repeating: 0, count: 256)
        guard buffer.withUnsafeMutableBytes({ gethostname($0.baseAddress!.assumingMemoryBound(to: CChar.self), 255) }) == 0 else {
            return "unknown"
        }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Takes the lock of `folder` (which must exist).
    ///
    /// - Parameter warn: where the takeover of a stale lock is reported.
    /// - Throws: `MorphoTrainError.output` naming the folder and the live holder.
    public static func acquire(_ folder: String, warn: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) throws -> RunFolderLock {
        let path = folder + "/" + fileName
        let mine = holderLine
        for _ in 0..<3 {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            if fd >= 0 {
                let line = mine + "\n"
                let written = line.withCString { write(fd, $0, strlen($0)) }
                close(fd)
                guard written == line.utf8.count else {
                    unlink(path)
                    throw MorphoTrainError.output(path: path, message: "cannot write the run lock (disk full?)")
                }
                return RunFolderLock(path: path, owned: true)
            }
            guard errno == EEXIST else {
                throw MorphoTrainError.output(path: folder, message: "cannot create the run lock: \(String(cString: strerror(errno)))")
            }
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if holder == mine { return RunFolderLock(path: path, owned: false) }
            guard let (pid, host) = parse(holder) else {
                // Being written by its creator this instant, or garbage: look again, then refuse.
                usleep(50_000)
                continue
            }
            if host == hostName && !isAlive(pid) {
                warn("\(folder): warning: taking over the lock of a run that is gone (\(holder))")
                unlink(path)
                continue
            }
            throw MorphoTrainError.output(
                path: folder,
                message: "another training run is writing this folder (\(holder)); wait for it, choose another --output, or remove \(path) if that run is gone")
        }
        throw MorphoTrainError.output(path: folder, message: "cannot take the run lock \(path) (\(String(cString: strerror(EEXIST))))")
    }

    /// Removes the lock file if this process created it and it still names this process.
    public func release() {
        guard owned else { return }
        let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        if holder == Self.holderLine { unlink(path) }
    }

    static func parse(_ line: String) -> (pid: pid_t, host: String)? {
        let words = line.split(separator: " ")
        guard words.count == 4, words[0] == "pid", words[2] == "host", let pid = pid_t(words[1]), pid > 0 else { return nil }
        return (pid, String(words[3]))
    }

    /// Whether a process with this pid exists (a zombie or another user's process counts).
    static func isAlive(_ pid: pid_t) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }
}
