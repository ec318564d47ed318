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
