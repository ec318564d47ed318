import Foundation
import MorphoIO
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// One live run per run folder: two `train` runs into the same `--output` used to both run to
/// the end, interleaving `metrics.jsonl`. Also: resume clears the temporary files of killed
/// writes, and `best` is never behind what `last` records.
final class RunFolderLockTests: XCTestCase, TinySegmentationRun {
    var tempDir = ""

    override func setUpWithError() throws { tempDir = try temporaryFolder("run-lock") }

    private func writeLock(pid: pid_t, in folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "pid \(pid) host \(RunFolderLock.hostName)\n".write(toFile: folder + "/run.lock", atomically: true, encoding: .utf8)
    }

    /// The pid of a process that has exited (and been reaped).
    private func deadPid() throws -> pid_t {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    func testSecondTrainIntoALiveRunFolderIsRefusedNamingTheHolder() throws {
        let run = tempDir + "/run"
        let holder = getppid()   // alive for as long as this test runs
        try writeLock(pid: holder, in: run)
        XCTAssertThrowsError(try TrainingRun.run(.segmentation(phantomConfig(epochs: 1, steps: 1)), output: run, progress: quiet())) { error in
            XCTAssertTrue(
                "\(error)".hasPrefix("\(run): another training run is writing this folder (pid \(holder) host \(RunFolderLock.hostName))"),
                "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/metrics.jsonl"), "the refused run wrote into the folder")
        XCTAssertEqual(try String(contentsOfFile: run + "/run.lock", encoding: .utf8), "pid \(holder) host \(RunFolderLock.hostName)\n")
    }

    func testStaleLockOfAProcessThatIsGoneIsTakenOverWithAWarning() throws {
        let folder = tempDir + "/stale"
        let dead = try deadPid()
        try writeLock(pid: dead, in: folder)
        var warnings: [String] = []
        let lock = try RunFolderLock.acquire(folder) { warnings.append($0) }
        XCTAssertEqual(warnings, ["\(folder): warning: taking over the lock of a run that is gone (pid \(dead) host \(RunFolderLock.hostName))"])
        XCTAssertEqual(try String(contentsOfFile: folder + "/run.lock", encoding: .utf8), RunFolderLock.holderLine + "\n")
        lock.release()
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/run.lock"))
    }

    func testLockWrittenOnAnotherHostIsRefusedNamingHostAndPidAndHowToTakeItOver() throws {
        let folder = tempDir + "/other-host"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let line = "pid 4242 host not-\(RunFolderLock.hostName) start 17\n"
        try line.write(toFile: folder + "/run.lock", atomically: true, encoding: .utf8)
        var warnings: [String] = []
        XCTAssertThrowsError(try RunFolderLock.acquire(folder) { warnings.append($0) }) { error in
            XCTAssertEqual(
                "\(error)",
                "\(folder): run.lock was written on host not-\(RunFolderLock.hostName) by pid 4242, which cannot be checked from this host "
                    + "(\(RunFolderLock.hostName)); if that run is gone, remove \(folder)/run.lock and train again")
            XCTAssertFalse("\(error)".contains("\n"), "one line")
        }
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(try String(contentsOfFile: folder + "/run.lock", encoding: .utf8), line, "another host's lock is left alone")
        // Taken over the way the message says.
        try FileManager.default.removeItem(atPath: folder + "/run.lock")
        let lock = try RunFolderLock.acquire(folder) { warnings.append($0) }
        XCTAssertEqual(try String(contentsOfFile: folder + "/run.lock", encoding: .utf8), RunFolderLock.holderLine + "\n")
        lock.release()
    }

    func testLockOfARecycledPidIsTakenOver() throws {
        // The pid is alive (this test's parent) but started at another time than the lock says:
        // the run that wrote the lock is gone and its pid was given to a later process.
        let folder = tempDir + "/recycled"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let pid = getppid()
        let started = try XCTUnwrap(RunFolderLock.startTicks(of: pid), "no /proc start time")
        let holder = "pid \(pid) host \(RunFolderLock.hostName) start \(started + 1)"
        try (holder + "\n").write(toFile: folder + "/run.lock", atomically: true, encoding: .utf8)
        var warnings: [String] = []
        let lock = try RunFolderLock.acquire(folder) { warnings.append($0) }
        XCTAssertEqual(warnings, ["\(folder): warning: taking over the lock of a run that is gone (\(holder))"])
        lock.release()
        // With its true start time the same pid is a live holder.
        try "pid \(pid) host \(RunFolderLock.hostName) start \(started)\n".write(toFile: folder + "/run.lock", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunFolderLock.acquire(folder) { warnings.append($0) })
    }

    func testLockAppearsWholeWithItsStartTimeAndLeavesNoTemporaryFile() throws {
        let folder = tempDir + "/whole"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let lock = try RunFolderLock.acquire(folder)
        let line = try String(contentsOfFile: folder + "/run.lock", encoding: .utf8)
        XCTAssertEqual(line, "pid \(getpid()) host \(RunFolderLock.hostName) start \(try XCTUnwrap(RunFolderLock.startTicks(of: getpid())))\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["run.lock"])
        lock.release()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }

    func testTemporaryLockOfAKilledRunIsRemovedByTheNextRun() throws {
        // Killed after writing its line and before linking it into place: no lock, one temporary.
        let folder = tempDir + "/killed-before-link"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let dead = try deadPid()
        let temporary = folder + "/.run.lock.tmp-\(dead)-12345"
        try "pid \(dead) host \(RunFolderLock.hostName) start 1\n".write(toFile: temporary, atomically: false, encoding: .utf8)
        let lock = try Trainer<SegmentationTask>.lockRunFolder(folder)
        XCTAssertFalse(FileManager.default.fileExists(atPath: temporary))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["run.lock"])
        lock.release()
    }

    func testLockIsHeldDuringTheRunAndRemovedAfterIt() throws {
        let run = tempDir + "/run"
        _ = try TrainingRun.run(.segmentation(phantomConfig(epochs: 1, steps: 1)), output: run, progress: quiet())
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/run.lock"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/last.safetensors"))
    }

    func testResumeRemovesTheTemporaryFilesOfKilledWrites() throws {
        let run = tempDir + "/run"
        let config = try phantomConfig(epochs: 2, steps: 1)
        _ = try TrainingRun.run(.segmentation(config), output: run, stopAfterEpoch: 1, progress: quiet())
        let dead = try deadPid()
        let stale = ["\(run)/.last.safetensors.tmp-\(dead)-k3j", "\(run)/.best.safetensors.tmp-\(dead)-x1"]
        for path in stale { try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: path)) }
        try "keep".write(toFile: run + "/notes.tmp", atomically: false, encoding: .utf8)   // not ours: kept
        _ = try TrainingRun.run(.segmentation(config), output: run, resume: run + "/last.safetensors", progress: quiet())
        for path in stale { XCTAssertFalse(FileManager.default.fileExists(atPath: path), path) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/notes.tmp"))
    }

    /// After every epoch, `best.safetensors` holds the epoch `last.safetensors` records as best.
    func testBestAndLastAgreeAfterEveryEpoch() throws {
        let run = tempDir + "/run"
        let config = try phantomConfig(epochs: 3, steps: 2)
        for epoch in 1...3 {
            _ = try TrainingRun.run(
                .segmentation(config), output: run, resume: epoch == 1 ? nil : run + "/last.safetensors", stopAfterEpoch: epoch,
                progress: quiet())
            let last = try Checkpoint.read(run + "/last.safetensors")
            let best = try Checkpoint.read(run + "/best.safetensors")
            XCTAssertEqual(last.epoch, epoch)
            XCTAssertEqual(best.epoch, last.bestEpoch)
        }
    }

    /// The order, pinned without a lucky kill: when writing `best` fails, `last` must still be the
    /// previous epoch's (written after `best`, it would record a best that is not on disk).
    func testFailedBestWriteLeavesLastAtThePreviousEpoch() throws {
        let run = tempDir + "/run"
        var config = try phantomConfig(epochs: 3, steps: 1)
        config.data.validation.fraction = 0   // no validation data: every epoch is the best
        _ = try TrainingRun.run(.segmentation(config), output: run, stopAfterEpoch: 1, progress: quiet())
        // A non-empty folder in best's place makes the rename of the new best fail.
        try FileManager.default.removeItem(atPath: run + "/best.safetensors")
        try FileManager.default.createDirectory(atPath: run + "/best.safetensors/blocker", withIntermediateDirectories: true)
        XCTAssertThrowsError(
            try TrainingRun.run(.segmentation(config), output: run, resume: run + "/last.safetensors", progress: quiet()))
        let last = try Checkpoint.read(run + "/last.safetensors")
        XCTAssertEqual(last.epoch, 1, "last was written although best failed")
        XCTAssertEqual(last.bestEpoch, 1)
    }

    func testRunFolderUnderAFileIsRefusedInWords() throws {
        let file = tempDir + "/plain"
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try TrainingRun.run(.segmentation(phantomConfig(epochs: 1, steps: 1)), output: file + "/run", progress: quiet())) { error in
            XCTAssertEqual("\(error)", "\(file)/run: write failed: \(file) is a file, not a folder")
        }
    }
}
