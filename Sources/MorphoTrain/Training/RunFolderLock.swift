import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The lock a live training run holds on its run folder: `<folder>/run.lock`, one line
/// `pid <pid> host <host> start <ticks>` (ticks: the process's start time since boot, field 22 of
/// `/proc/<pid>/stat`, which tells a live holder from a later process given the same pid), taken
/// before the run writes anything and removed when it ends.
///
/// Two runs into one folder would interleave `metrics.jsonl` and leave one run's config beside
/// the other's checkpoints; the second is refused with a message naming the holder. A lock left
/// by a killed run (its pid no longer exists on this host, or now belongs to a process started
/// later) is taken over with a warning on stderr. A lock from another host cannot be checked and
/// is never taken over: the message names that host and pid and says to remove the lock by hand
/// once that run is gone.
///
/// The line is written to a temporary file (`.run.lock.tmp-<pid>-…`, which the next run removes
/// like any stale temporary) and linked into place, so the lock appears whole or not at all: a
/// kill between creating the lock and writing its line used to leave an empty `run.lock` that no
/// later run could read, check or take over.
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
    static var holderLine: String {
        let pid = getpid()
        return "pid \(pid) host \(hostName)" + (startTicks(of: pid).map { " start \($0)" } ?? "")
    }

    static var hostName: String {
        var buffer = [UInt8](repeating: 0, count: 256)
        guard buffer.withUnsafeMutableBytes({ gethostname($0.baseAddress!.assumingMemoryBound(to: CChar.self), 255) }) == 0 else {
            return "unknown"
        }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// The start time of process `pid` in clock ticks since boot (`/proc/<pid>/stat`, field 22),
    /// or nil where there is no /proc or no such process.
    static func startTicks(of pid: pid_t) -> UInt64? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        // Field 2 is the command name in parentheses and may hold spaces: count after its ')'.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    /// Takes the lock of `folder` (which must exist).
    ///
    /// - Parameter warn: where the takeover of a stale lock is reported.
    /// - Throws: `MorphoTrainError.output` naming the folder and the live holder.
    public static func acquire(_ folder: String, warn: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) throws -> RunFolderLock {
        let path = folder + "/" + fileName
        let mine = holderLine
        for _ in 0..<3 {
            if try create(path, line: mine) { return RunFolderLock(path: path, owned: true) }
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if holder == mine { return RunFolderLock(path: path, owned: false) }
            guard let (pid, host, start) = parse(holder) else {
                // Not a line this code writes (locks appear whole): removed between the two looks,
                // or another program's file. Look again, then refuse.
                usleep(50_000)
                continue
            }
            guard host == hostName else {
                throw MorphoTrainError.output(
                    path: folder,
                    message: "run.lock was written on host \(host) by pid \(pid), which cannot be checked from this host (\(hostName)); "
                        + "if that run is gone, remove \(path) and train again")
            }
            if !isAlive(pid, start: start) {
                warn("\(folder): warning: taking over the lock of a run that is gone (\(holder))")
                unlink(path)
                continue
            }
            throw MorphoTrainError.output(
                path: folder,
                message: "another training run is writing this folder (\(holder)); wait for it, choose another --output, or remove \(path) if that run is gone")
        }
        let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        throw MorphoTrainError.output(
            path: folder, message: "cannot take the run lock: \(path) holds \"\(holder)\", not a run's line; remove it if no run is writing this folder")
    }

    /// Creates the lock file at `path` holding `line`, whole or not at all: the line goes to a
    /// temporary file that is hard-linked to `path` (`link` fails if `path` exists).
    ///
    /// - Returns: false when `path` exists already (or another run took it and removed the temporary).
    private static func create(_ path: String, line: String) throws -> Bool {
        let folder = (path as NSString).deletingLastPathComponent
        let temporary = folder + "/.\(fileName).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else {
            throw MorphoTrainError.output(path: folder, message: "cannot create the run lock: \(String(cString: strerror(errno)))")
        }
        defer { unlink(temporary) }
        let text = line + "\n"
        let written = text.withCString { write(fd, $0, strlen($0)) }
        let closed = close(fd) == 0
        guard written == text.utf8.count, closed else {
            throw MorphoTrainError.output(path: path, message: "cannot write the run lock (disk full?)")
        }
        if link(temporary, path) == 0 { return true }
        // ENOENT: a run that has just taken the lock swept this temporary away as stale; the
        // caller then reads that run's line and refuses naming it, as for EEXIST.
        guard errno == EEXIST || errno == ENOENT else {
            throw MorphoTrainError.output(path: folder, message: "cannot create the run lock: \(String(cString: strerror(errno)))")
        }
        return false
    }

    /// Removes the lock file if this process created it and it still names this process.
    public func release() {
        guard owned else { return }
        let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        if holder == Self.holderLine { unlink(path) }
    }

    /// `pid P host H` with an optional ` start T` (locks written before the start time was recorded).
    static func parse(_ line: String) -> (pid: pid_t, host: String, start: UInt64?)? {
        let words = line.split(separator: " ")
        guard words.count == 4 || words.count == 6, words[0] == "pid", words[2] == "host", let pid = pid_t(words[1]), pid > 0 else {
            return nil
        }
        guard words.count == 6 else { return (pid, String(words[3]), nil) }
        guard words[4] == "start", let start = UInt64(words[5]) else { return nil }
        return (pid, String(words[3]), start)
    }

    /// Whether the process `pid` that wrote a lock still runs on this host: a process with that
    /// pid exists (a zombie or another user's process counts) and, when the lock recorded its
    /// start time, started then (not a later process that was given the recycled pid).
    static func isAlive(_ pid: pid_t, start: UInt64?) -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let start, let now = startTicks(of: pid) else { return true }
        return now == start
    }
}
