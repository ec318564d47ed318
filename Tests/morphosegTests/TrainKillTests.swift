import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// Kills `morphoseg train` (SIGKILL, no chance to clean up) at random points, many times, and
/// checks after each kill that the run folder is consistent, then that resuming to the end gives
/// the run an uninterrupted one gives.
final class TrainKillTests: XCTestCase {
    struct Slot {
        var epoch: Int
        var bestEpoch: Int
    }

    private func slot(_ path: String) throws -> Slot? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let meta = try SafeTensors.read(path).metadata
        return Slot(epoch: Int(meta["epoch"] ?? "") ?? -1, bestEpoch: Int(meta["best_epoch"] ?? "") ?? -1)
    }

    /// The consistency every kill must leave: readable checkpoints, `best` holding (or, killed
    /// between the two renames, one epoch past) the epoch `last` records as best.
    private func checkConsistent(_ run: String, after note: String) throws {
        guard let last = try slot(run + "/last.safetensors") else { return }
        XCTAssertGreaterThanOrEqual(last.epoch, 1, note)
        guard last.bestEpoch > 0 else { return }
        let best = try XCTUnwrap(try slot(run + "/best.safetensors"), "\(note): last records best epoch \(last.bestEpoch), no best file")
        XCTAssertTrue(best.epoch == last.bestEpoch || best.epoch == last.epoch + 1, "\(note): best \(best.epoch), last \(last)")
    }

    /// Per-epoch losses and validation scores of `metrics.jsonl` (the wall-clock field differs).
    private func curve(_ run: String) throws -> [String] {
        try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            String(line).replacingOccurrences(of: #""seconds": [0-9.e+-]+"#, with: "", options: .regularExpression)
        }
    }

    func testKilledAtRandomPointsTheRunFolderStaysResumableAndConsistent() throws {
        let folder = try temporaryFolder("train-kill")
        let config = folder + "/tiny.yaml"
        // About 0.05 s per epoch on 2 cores: a run of about 1.5 s to kill at random points.
        let epochs = 30
        try TinyConfigs.phantomSegmentation(
            epochs: epochs, steps: 2, threads: 1, optimizer: "{kind: adam, lr: 0.003}", extra: "output: {plots: false}")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let started = Date()
        let reference = try MorphosegProcess.run(["train", "--config", config, "--output", folder + "/reference"])
        XCTAssertEqual(reference.status, 0, reference.errors)
        // Kills land in the first third of an uninterrupted run's time (measured, so the test
        // keeps killing on a slow or busy machine): each attempt gets a sixth of the run on
        // average, process start and data set included.
        let window = max(0.02, Date().timeIntervalSince(started) / 3)

        let run = folder + "/killed"
        var generator = SystemRandomNumberGenerator()
        var kills = 0
        for attempt in 0..<60 where kills < 10 {
            let resume = FileManager.default.fileExists(atPath: run + "/last.safetensors")
            let arguments = resume ? ["train", "--resume", "--output", run] : ["train", "--config", config, "--output", run]
            let errors = folder + "/attempt-\(attempt).err"
            let child = try MorphosegProcess.start(arguments, errors: errors)
            let delay = Double.random(in: 0.001...window, using: &generator)
            usleep(useconds_t(delay * 1e6))
            var killed = false
            if child.isRunning {
                kill(child.processIdentifier, SIGKILL)
                kills += 1
                killed = true
            }
            child.waitUntilExit()
            // A child that ended on its own must have succeeded: a refusal here (an unreadable or
            // untakeable lock a kill left, a checkpoint it cannot read) is what this test looks for.
            if !killed && child.terminationStatus != 0 {
                let message = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
                XCTFail("attempt \(attempt): \(arguments.joined(separator: " ")) failed (\(child.terminationStatus)): \(message)")
                break
            }
            try checkConsistent(run, after: "attempt \(attempt), killed after \(String(format: "%.2f", delay)) s")
            if let last = try slot(run + "/last.safetensors"), last.epoch == epochs {
                if kills >= 3 { break }
                // Finished between kills (a slow reference run makes a wide window): start over.
                try FileManager.default.removeItem(atPath: run)
            }
        }
        XCTAssertGreaterThanOrEqual(kills, 3, "the run finished before it could be killed often enough")

        let finish = FileManager.default.fileExists(atPath: run + "/last.safetensors")
            ? try MorphosegProcess.run(["train", "--resume", "--output", run])
            : try MorphosegProcess.run(["train", "--config", config, "--output", run])
        XCTAssertEqual(finish.status, 0, finish.errors)
        let last = try XCTUnwrap(try slot(run + "/last.safetensors"))
        XCTAssertEqual(last.epoch, epochs)
        XCTAssertEqual(try slot(run + "/best.safetensors")?.epoch, last.bestEpoch)
        XCTAssertEqual(try curve(run), try curve(folder + "/reference"), "the killed and resumed run left the uninterrupted curve")
        let left = try FileManager.default.contentsOfDirectory(atPath: run).filter { $0.contains(".tmp-") || $0 == "run.lock" }
        XCTAssertEqual(left, [], "temporary files or the lock left behind")
    }
}
