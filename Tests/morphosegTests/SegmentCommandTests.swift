import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// `morphoseg segment` as a user runs it: a folder with a bad file keeps going, non-finite
/// images are refused unless `--nan-as` says what they mean, `--threads 0` is refused.
final class SegmentCommandTests: XCTestCase {
    /// A one-step model of the tiny 2D phantom config, trained once for these tests.
    nonisolated(unsafe) private static var model: String?

    private func trainedModel() throws -> String {
        if let model = Self.model, FileManager.default.fileExists(atPath: model) { return model }
        let folder = try makeTemporaryFolder("segment-cli-model")
        let config = folder + "/tiny.yaml"
        try TinyConfigs.phantomSegmentation(epochs: 1, steps: 1, threads: 1, optimizer: "{kind: adam, lr: 0.003}")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let run = try MorphosegProcess.run(["train", "--config", config, "--output", folder + "/run"])
        XCTAssertEqual(run.status, 0, run.errors)
        Self.model = folder + "/run/last.safetensors"
        return Self.model!
    }

    private func writeImage(_ path: String, _ value: (Int) -> Float) throws {
        let n = 48
        try NIfTI.write(Volume(depth: 1, height: n, width: n, data: (0..<(n * n)).map(value)), to: path)
    }

    func testFolderSegmentKeepsGoingPastABadFileThenListsTheFailuresAndExitsNonZero() throws {
        let model = try trainedModel()
        let folder = try temporaryFolder("segment-folder")
        try FileManager.default.createDirectory(atPath: folder + "/in", withIntermediateDirectories: true)
        try writeImage(folder + "/in/a.nii.gz") { Float($0 % 7) }
        try "not an image".write(toFile: folder + "/in/b.nii", atomically: true, encoding: .utf8)
        try writeImage(folder + "/in/c.nii.gz") { Float($0 % 5) }
        let run = try MorphosegProcess.run(["segment", "--model", model, "--input", folder + "/in", "--output", folder + "/out"])
        XCTAssertEqual(run.status, 1, run.errors)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/out/a.nii.gz"), "the file before the bad one")
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/out/c.nii.gz"), "the file after the bad one")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/out/b.nii"))
        XCTAssertTrue(run.output.contains("segmented 2 of 3 cases"), run.output)
        XCTAssertTrue(run.errors.contains("1 of 3 cases failed and have no output:\n  \(folder)/in/b.nii: not a NIfTI file"), run.errors)
    }

    /// Folder mode as a user runs it: every .nii and .nii.gz of the folder (other files ignored)
    /// gets a label map and a probability map under its own name, each the same as segmenting
    /// that file alone, on that file's grid (the inputs differ in size and geometry).
    func testFolderSegmentWritesForEachFileWhatSegmentingItAloneWrites() throws {
        let model = try trainedModel()
        let folder = try temporaryFolder("segment-folder-all")
        try FileManager.default.createDirectory(atPath: folder + "/in", withIntermediateDirectories: true)
        try writeImage(folder + "/in/a.nii.gz") { Float($0 % 7) }
        // Another size, spacing and origin, stored uncompressed.
        var affine = Affine.diagonal([0.8, 1.25, 1])
        affine.matrix[0][3] = -12
        affine.matrix[1][3] = 7
        let values: [Float] = (0..<(40 * 56)).map { (i: Int) -> Float in Float((i / 56 + i % 56) % 9) }
        let other = Volume(depth: 1, height: 40, width: 56, data: values, spacing: SIMD3<Double>(0.8, 1.25, 1), affine: affine)
        try NIfTI.write(other, to: folder + "/in/b.nii")
        try "notes".write(toFile: folder + "/in/readme.txt", atomically: true, encoding: .utf8)
        let run = try MorphosegProcess.run(
            ["segment", "--model", model, "--input", folder + "/in", "--output", folder + "/out", "--probabilities", folder + "/p"])
        XCTAssertEqual(run.status, 0, run.errors)
        XCTAssertTrue(run.output.contains("segmented 2 of 2 cases"), run.output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder + "/out").sorted(), ["a.nii.gz", "b.nii"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder + "/p").sorted(), ["a.nii.gz", "b.nii"])
        for name in ["a.nii.gz", "b.nii"] {
            let alone = try MorphosegProcess.run(
                ["segment", "--model", model, "--input", folder + "/in/" + name, "--output", folder + "/alone-" + name,
                 "--probabilities", folder + "/alone-p-" + name])
            XCTAssertEqual(alone.status, 0, alone.errors)
            let input = try NIfTI.read(folder + "/in/" + name)
            for (batch, single) in [("out/", "alone-"), ("p/", "alone-p-")] {
                let fromFolder = try NIfTI.read(folder + "/" + batch + name), fromFile = try NIfTI.read(folder + "/" + single + name)
                XCTAssertEqual(fromFolder.data, fromFile.data, "\(batch)\(name)")
                XCTAssertEqual(fromFolder.spatialShape, input.spatialShape, "\(batch)\(name)")
                XCTAssertTrue(fromFolder.affine.isApproximatelyEqual(to: input.affine, tolerance: 1e-6), "\(batch)\(name)")
            }
        }
    }

    /// `segment --input X --output X` used to overwrite the scan with labels and exit 0; folder
    /// mode with one folder overwrote every input; `--probabilities` could be the input or
    /// `--output`. Each is refused up front in one line naming the option, the input is unchanged
    /// and nothing is written.
    func testOutputOrProbabilitiesOnTheInputOrOnEachOtherIsRefusedAndTheInputKept() throws {
        let model = try trainedModel()
        let folder = try temporaryFolder("segment-alias")
        try FileManager.default.createDirectory(atPath: folder + "/in", withIntermediateDirectories: true)
        let scan = folder + "/in/scan.nii.gz"
        try writeImage(scan) { Float($0 % 7) }
        let original = try Data(contentsOf: URL(fileURLWithPath: scan))
        let cases: [(extra: [String], says: String)] = [
            (["--input", scan, "--output", scan], "--output is the input"),
            (["--input", scan, "--output", folder + "/in/./scan.nii.gz"], "--output is the input"),
            (["--input", scan, "--output", folder + "/l.nii.gz", "--probabilities", scan], "--probabilities is the input"),
            (["--input", scan, "--output", folder + "/l.nii.gz", "--probabilities", folder + "/l.nii.gz"], "--output"),
            (["--input", folder + "/in", "--output", folder + "/in"], "--output is the input"),
            (["--input", folder + "/in", "--output", folder + "/out", "--probabilities", folder + "/in/"], "--probabilities is the input"),
        ]
        for (extra, says) in cases {
            let run = try MorphosegProcess.run(["segment", "--model", model] + extra)
            XCTAssertNotEqual(run.status, 0, "\(extra)")
            XCTAssertEqual(run.errors.split(separator: "\n").count, 1, "\(extra): \(run.errors)")
            XCTAssertTrue(run.errors.contains(says), "\(extra): \(run.errors)")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: scan)), original, "\(extra): the input was changed")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), ["in"], "\(extra): something was written")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder + "/in"), ["scan.nii.gz"], "\(extra)")
        }
    }

    func testImageWithNaNVoxelsIsRefusedUnlessNanAsIsGiven() throws {
        let model = try trainedModel()
        let folder = try temporaryFolder("segment-nan")
        try writeImage(folder + "/nan.nii.gz") { $0 % 10 == 0 ? .nan : 1 }
        let refused = try MorphosegProcess.run(["segment", "--model", model, "--input", folder + "/nan.nii.gz", "--output", folder + "/l.nii.gz"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.errors.contains("\(folder)/nan.nii.gz: 231 voxels are NaN or infinite"), refused.errors)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/l.nii.gz"))
        let replaced = try MorphosegProcess.run(
            ["segment", "--model", model, "--input", folder + "/nan.nii.gz", "--output", folder + "/l.nii.gz", "--nan-as", "0"])
        XCTAssertEqual(replaced.status, 0, replaced.errors)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/l.nii.gz"))
    }

    func testThreadsZeroIsRefusedLikeEveryOtherCommand() throws {
        let folder = try temporaryFolder("segment-threads")
        for command in [["segment", "--model", "m", "--input", "i.nii", "--output", folder + "/o.nii"], ["info", "x.nii"]] {
            let run = try MorphosegProcess.run(command + ["--threads", "0"])
            XCTAssertNotEqual(run.status, 0, "\(command)")
            XCTAssertTrue(run.errors.contains("--threads must be at least 1") || run.errors.contains("Unknown option"), run.errors)
        }
    }

    func testFolderGivenAsAFileSaysSo() throws {
        let folder = try temporaryFolder("info-folder")
        let run = try MorphosegProcess.run(["info", folder])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.errors.contains("\(folder): is a folder, not a file"), run.errors)
    }
}
