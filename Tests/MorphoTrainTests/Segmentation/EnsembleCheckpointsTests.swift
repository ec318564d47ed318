import Foundation
import MorphoIO
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// `segment --model RUN_FOLDER` stands for the run's fold ensemble (or its one best checkpoint).
final class EnsembleCheckpointsTests: XCTestCase {
    private func touch(_ path: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data().write(to: URL(fileURLWithPath: path))
    }

    func testRunFolderStandsForEachFoldsBestCheckpointInFoldOrder() throws {
        let run = try temporaryFolder("folds")
        for k in [10, 0, 2] { try touch("\(run)/fold_\(k)/best.safetensors") }
        try touch("\(run)/fold_2/last.safetensors")
        // Not folds: a file named like one, a non-numeric and a zero-padded suffix.
        try touch("\(run)/fold_3")
        try touch("\(run)/fold_x/best.safetensors")
        try touch("\(run)/fold_01/best.safetensors")
        XCTAssertEqual(
            try EnsembleCheckpoints.expand([run, "a.safetensors"]),
            ["\(run)/fold_0/best.safetensors", "\(run)/fold_2/best.safetensors", "\(run)/fold_10/best.safetensors", "a.safetensors"])
    }

    func testRunFolderWithoutFoldsStandsForItsBestCheckpoint() throws {
        let run = try temporaryFolder("nofolds")
        try touch("\(run)/best.safetensors")
        try touch("\(run)/last.safetensors")
        XCTAssertEqual(try EnsembleCheckpoints.expand([run]), ["\(run)/best.safetensors"])
    }

    func testFoldWithoutBestCheckpointIsRefusedByName() throws {
        let run = try temporaryFolder("untrained")
        try touch("\(run)/fold_0/best.safetensors")
        try touch("\(run)/fold_1/last.safetensors")
        XCTAssertThrowsError(try EnsembleCheckpoints.expand([run])) {
            XCTAssertEqual(
                "\($0)",
                "\(run)/fold_1: has no best.safetensors (fold 1 is not trained yet); train it, or pass the folds to use with --model FILE")
        }
    }

    func testFolderWithoutCheckpointsIsRefusedByName() throws {
        let run = try temporaryFolder("empty")
        XCTAssertThrowsError(try EnsembleCheckpoints.expand([run])) {
            XCTAssertEqual(
                "\($0)", "\(run): is a folder with neither fold_k/ folders nor a best.safetensors; give a checkpoint file or a run folder")
        }
    }

    /// End to end: `segment --model RUN` writes what the two fold checkpoints given as files write.
    func testSegmentWithRunFolderEqualsSegmentWithItsFolds() throws {
        let dir = try temporaryFolder("foldcli")
        try FileManager.default.createDirectory(atPath: dir + "/run/fold_0", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/run/fold_1", withIntermediateDirectories: true)
        try UntrainedCheckpoints.write(dims: 2, seed: 1, to: dir + "/run/fold_0/best.safetensors")
        try UntrainedCheckpoints.write(dims: 2, seed: 2, to: dir + "/run/fold_1/best.safetensors")
        try NIfTI.write(try UntrainedCheckpoints.image(dims: 2), to: dir + "/image.nii.gz")
        let byFolder = try MorphosegProcess.run([
            "segment", "--model", dir + "/run", "--input", dir + "/image.nii.gz", "--output", dir + "/folder.nii.gz",
            "--probabilities", dir + "/folder-probs.nii.gz",
        ])
        XCTAssertEqual(byFolder.status, 0, byFolder.errors)
        XCTAssertTrue(byFolder.output.contains("ensemble of 2 checkpoints"), byFolder.output)
        let byFiles = try MorphosegProcess.run([
            "segment", "--model", dir + "/run/fold_0/best.safetensors", "--model", dir + "/run/fold_1/best.safetensors",
            "--input", dir + "/image.nii.gz", "--output", dir + "/files.nii.gz", "--probabilities", dir + "/files-probs.nii.gz",
        ])
        XCTAssertEqual(byFiles.status, 0, byFiles.errors)
        let single = try SegmentationEnsemble(checkpoints: [dir + "/run/fold_0/best.safetensors"])
            .segment([try NIfTI.read(dir + "/image.nii.gz")], paths: ["image"]).probabilities
        let ensembled = try NIfTI.read(dir + "/folder-probs.nii.gz")
        XCTAssertNotEqual(ensembled.data, single.data, "two folds, not one")
        XCTAssertEqual(ensembled.data, try NIfTI.read(dir + "/files-probs.nii.gz").data)
        XCTAssertEqual(try NIfTI.read(dir + "/folder.nii.gz").data, try NIfTI.read(dir + "/files.nii.gz").data)
    }
}
