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

    func testOutputFolderUnderAFileIsReportedInWordsNotAFoundationCode() throws {
        let folder = try temporaryFolder("train-under-file")
        let config = try tinyConfig(folder, epochs: 1)
        let run = try MorphosegProcess.run(["train", "--config", config, "--output", config + "/run"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.errors.contains("\(config) is a file, not a folder"), run.errors)
        XCTAssertFalse(run.errors.contains("Cocoa") || run.errors.contains("NSCocoaErrorDomain"), run.errors)
    }
}
