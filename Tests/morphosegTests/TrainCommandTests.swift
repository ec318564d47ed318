import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// `morphoseg train` messages and resumption as the help describes them.
final class TrainCommandTests: XCTestCase {
    private func tinyConfig(_ folder: String, epochs: Int) throws -> String {
        let path = folder + "/tiny.yaml"
        try TinyConfigs.phantomSegmentation(epochs: epochs, steps: 1, threads: 1, optimizer: "{kind: adam, lr: 0.003}")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The help says a resumed run uses the config saved in the checkpoint; `--config` used to be
    /// demanded anyway.
    func testResumeWithOutputAndNoConfigUsesTheSavedConfig() throws {
        let folder = try temporaryFolder("train-resume")
        let config = try tinyConfig(folder, epochs: 2)
        let first = try MorphosegProcess.run(["train", "--config", config, "--output", folder + "/run", "--stop-after", "1"])
        XCTAssertEqual(first.status, 0, first.errors)
        let resumed = try MorphosegProcess.run(["train", "--resume", "--output", folder + "/run"])
        XCTAssertEqual(resumed.status, 0, resumed.errors)
        XCTAssertTrue(resumed.output.contains("done: 2 epochs"), resumed.output)
        let missing = try MorphosegProcess.run(["train", "--resume", "--output", folder + "/nowhere"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.errors.contains("\(folder)/nowhere/last.safetensors: no such checkpoint file"), missing.errors)
    }

    /// Used to say registration "is not available in this build".
    func testRegistrationCheckpointGivenToResumeFromContinuesTheRun() throws {
        let folder = try temporaryFolder("train-resume-registration")
        let config = folder + "/reg.yaml"
        try TinyConfigs.registration(epochs: 2, steps: 1, threads: 1, optimizer: "{kind: adam, lr: 0.001}", validateEvery: 1)
            .write(toFile: config, atomically: true, encoding: .utf8)
        let first = try MorphosegProcess.run(["train", "--config", config, "--output", folder + "/run", "--stop-after", "1"])
        XCTAssertEqual(first.status, 0, first.errors)
        let resumed = try MorphosegProcess.run(["train", "--resume-from", folder + "/run/last.safetensors", "--output", folder + "/more"])
        XCTAssertEqual(resumed.status, 0, resumed.errors)
        XCTAssertTrue(resumed.output.contains("done: 2 epochs"), resumed.output)
    }

    func testNanAsCannotChangeTheValueOfAResumedRun() throws {
        let folder = try temporaryFolder("train-nan-as")
        let config = try tinyConfig(folder, epochs: 2)
        let first = try MorphosegProcess.run(["train", "--config", config, "--output", folder + "/run", "--stop-after", "1", "--nan-as", "0"])
        XCTAssertEqual(first.status, 0, first.errors)
        XCTAssertTrue(try String(contentsOfFile: folder + "/run/config.yaml", encoding: .utf8).contains("nan_as: 0"))
        let changed = try MorphosegProcess.run(["train", "--resume", "--output", folder + "/run", "--nan-as", "5"])
        XCTAssertNotEqual(changed.status, 0)
        XCTAssertTrue(changed.errors.contains("data.nan_as: is 0.0 in this run; --nan-as 5.0 cannot change it on resume"), changed.errors)
    }

    func testOutputFolderUnderAFileIsReportedInWordsNotAFoundationCode() throws {
        let folder = try temporaryFolder("train-under-file")
        let config = try tinyConfig(folder, epochs: 1)
        let run = try MorphosegProcess.run(["train", "--config", config, "--output", config + "/run"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.errors.contains("\(config) is a file, not a folder"), run.errors)
        XCTAssertFalse(run.errors.contains("Cocoa") || run.errors.contains("NSCocoaErrorDomain"), run.errors)
    }
}
