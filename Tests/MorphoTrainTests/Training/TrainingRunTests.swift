import Foundation
import MorphoIO
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// Segmentation training runs end to end on the tiny phantom: learning, resuming, logged terms.
final class TrainingRunTests: XCTestCase, TinySegmentationRun {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("trainer")
    }

    func testShortTrainingRunLearnsThePhantom() throws {
        let config = try phantomConfig(epochs: 8, steps: 12)
        let summary = try TrainingRun.run(.segmentation(config), output: tempDir + "/run", progress: quiet())
        XCTAssertEqual(summary.epochs, 8)
        let first = try XCTUnwrap(summary.history.first?.metric("dice_mean"))
        XCTAssertGreaterThan(summary.bestScore, 0.85, "best validation Dice \(summary.bestScore)")
        XCTAssertGreaterThan(summary.bestScore, first)
        XCTAssertLessThan(summary.history.last!.loss, summary.history.first!.loss)
        for file in ["config.yaml", "metrics.jsonl", "best.safetensors", "last.safetensors", "curves.png", "overlay.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: tempDir + "/run/" + file), file)
        }
        // The saved config is the resolved one and loads back to the same config.
        XCTAssertEqual(try RunConfig.load(tempDir + "/run/config.yaml"), config)
        let lines = try String(contentsOfFile: tempDir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 8)
        let record = try XCTUnwrap(EpochRecord(json: String(lines[7])))
        XCTAssertEqual(record.terms.map(\.name), ["dice_ce", "boundary"])
        XCTAssertEqual(record.scalars.map(\.name), ["alpha"])
        XCTAssertEqual(record.scalars[0].value, 0.08, accuracy: 1e-12)
        XCTAssertEqual(record.weights.map(\.value)[1], 0.08, accuracy: 1e-12)  // α0 + 7·Δ
        XCTAssertNotNil(record.metric("hd95.2"))
    }

    /// Resuming restores weights, optimiser state, epoch, generator and data order exactly, bit
    /// for bit, on two threads: every kernel assigns its work to workers statically (the
    /// convolution weight gradient sums tile t on worker t mod workers), so two runs with the
    /// same thread count compute the same floats.
    func testResumeContinuesTheSameLossCurveOnTwoThreads() throws {
        let saved = Parallel.threads
        Parallel.threads = 2
        defer { Parallel.threads = saved }
        let config = try phantomConfig(epochs: 4, steps: 6)
        _ = try TrainingRun.run(.segmentation(config), output: tempDir + "/straight", progress: quiet())
        let first = try TrainingRun.run(.segmentation(config), output: tempDir + "/resumed", stopAfterEpoch: 2, progress: quiet())
        XCTAssertEqual(first.epochs, 2)
        let resumed = try TrainingRun.run(
            .segmentation(config), output: tempDir + "/resumed", resume: tempDir + "/resumed/last.safetensors", progress: quiet())
        XCTAssertEqual(resumed.epochs, 4)
        // metrics.jsonl: the same lines apart from the wall time.
        func lines(_ run: String) throws -> [String] {
            try String(contentsOfFile: tempDir + "/\(run)/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
                $0.components(separatedBy: ", \"seconds\"")[0]
            }
        }
        let a = try lines("straight"), b = try lines("resumed")
        XCTAssertEqual(a.count, 4)
        XCTAssertEqual(a, b)
        // Same final weights and optimiser state, bit for bit.
        let ca = try Checkpoint.read(tempDir + "/straight/last.safetensors")
        let cb = try Checkpoint.read(tempDir + "/resumed/last.safetensors")
        XCTAssertEqual(ca.epoch, 4)
        XCTAssertEqual(ca.rngState, cb.rngState)
        XCTAssertEqual(Set(ca.model.keys), Set(cb.model.keys))
        XCTAssertEqual(Set(ca.optimizer.keys), Set(cb.optimizer.keys))
        for (name, t) in ca.model.sorted(by: { $0.key < $1.key }) {
            let d = zip(t.scalars, cb.model[name]!.scalars).map { abs($0 - $1) }.reduce(0, nanStrictMax)
            XCTAssertEqual(d, 0, "model.\(name)")
        }
        for (name, t) in ca.optimizer.sorted(by: { $0.key < $1.key }) {
            let d = zip(t.scalars, cb.optimizer[name]!.scalars).map { abs($0 - $1) }.reduce(0, nanStrictMax)
            XCTAssertEqual(d, 0, "optimizer.\(name)")
        }
    }

    func testResumingWithAnotherConfigIsRefused() throws {
        let config = try phantomConfig(epochs: 2, steps: 2)
        _ = try TrainingRun.run(.segmentation(config), output: tempDir + "/run", stopAfterEpoch: 1, progress: quiet())
        var other = config
        other.training.optimizer.lr = 0.1
        XCTAssertThrowsError(try TrainingRun.run(
            .segmentation(other), output: tempDir + "/run", resume: tempDir + "/run/last.safetensors", progress: quiet())) { error in
            XCTAssertEqual("\(error)", "\(tempDir)/run/last.safetensors: was trained with a different config; resume with the config saved in it")
        }
    }

    func testPhysicalRegularizationTermIsTrainedAndLogged() throws {
        let config = try phantomConfig(epochs: 2, steps: 3, loss: "{regional: dice, prl: {weight: 0.5}}")
        let summary = try TrainingRun.run(.segmentation(config), output: tempDir + "/run", progress: quiet())
        let record = try XCTUnwrap(summary.history.last)
        XCTAssertEqual(record.terms.map(\.name), ["dice", "boundary", "prl"])
        XCTAssertEqual(record.weights.map(\.value)[2], 0.5)
        XCTAssertTrue(record.terms[2].value.isFinite && record.terms[2].value > 0)
    }
}

/// `TrainingRun.start`, what `morphoseg train` calls: one read of the config file, resume and the
/// config-against-checkpoint check in one place.
final class TrainingRunStartTests: XCTestCase, QuietTraining {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("training-run-start")
    }

    func writeConfig(lr: Double) throws -> String {
        let path = tempDir + "/tiny.yaml"
        try TinyConfigs.phantomSegmentation(epochs: 2, steps: 2, threads: 2, optimizer: "{kind: adam, lr: \(lr)}")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testARunReadsItsConfigFileOnce() throws {
        let path = try writeConfig(lr: 0.003)
        let before = ConfigFile.readCount
        let (summary, dir) = try TrainingRun.start(configPath: path, output: tempDir + "/run", stopAfterEpoch: 1, progress: quiet())
        XCTAssertEqual(ConfigFile.readCount - before, 1)
        XCTAssertEqual(summary.epochs, 1)
        XCTAssertEqual(dir, tempDir + "/run")
    }

    func testResumeContinuesWithTheConfigSavedInTheCheckpoint() throws {
        let path = try writeConfig(lr: 0.003)
        _ = try TrainingRun.start(configPath: path, output: tempDir + "/run", stopAfterEpoch: 1, progress: quiet())
        let (summary, _) = try TrainingRun.start(configPath: path, output: tempDir + "/run", resume: true, progress: quiet())
        XCTAssertEqual(summary.epochs, 2)
        let (again, _) = try TrainingRun.start(
            configPath: nil, output: tempDir + "/from", resumeFrom: tempDir + "/run/last.safetensors", progress: quiet())
        XCTAssertEqual(again.epochs, 2)
    }

    func testResumeWithAChangedConfigFileIsRefusedNamingBoth() throws {
        let path = try writeConfig(lr: 0.003)
        _ = try TrainingRun.start(configPath: path, output: tempDir + "/run", stopAfterEpoch: 1, progress: quiet())
        _ = try writeConfig(lr: 0.1)
        XCTAssertThrowsError(try TrainingRun.start(configPath: path, output: tempDir + "/run", resume: true, progress: quiet())) { error in
            XCTAssertEqual(
                "\(error)", "\(path): differs from the config saved in \(tempDir)/run/last.safetensors; omit --config to resume")
        }
    }
}
