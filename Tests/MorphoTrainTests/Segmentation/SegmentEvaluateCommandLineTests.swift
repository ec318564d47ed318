import Foundation
import MorphoIO
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// `morphoseg segment` with an ensemble and mirroring, then `morphoseg evaluate` on the folders,
/// end to end through the executable.
final class SegmentEvaluateCommandLineTests: XCTestCase {
    func testEnsembleWithMirroringKeepLargestThenFolderEvaluation() throws {
        let dir = try temporaryFolder("cli")
        try UntrainedCheckpoints.write(dims: 2, seed: 1, to: dir + "/a.safetensors")
        try UntrainedCheckpoints.write(dims: 2, seed: 2, to: dir + "/b.safetensors")
        for folder in ["images", "pred", "ref"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(folder)", withIntermediateDirectories: true)
        }
        guard case .phantom(let p) = try UntrainedCheckpoints.config(dims: 2, seed: 0).data.source else { return XCTFail() }
        for i in 0..<2 {
            let (image, label) = Phantom.make(p, index: i)
            try NIfTI.write(image, to: "\(dir)/images/case\(i).nii.gz")
            try NIfTI.write(label, to: "\(dir)/ref/case\(i).nii.gz", datatype: .uint8)
        }
        let segment = try MorphosegProcess.run([
            "segment", "--model", dir + "/a.safetensors", "--model", dir + "/b.safetensors", "--tta",
            "--input", dir + "/images", "--output", dir + "/pred", "--probabilities", dir + "/probs",
        ])
        XCTAssertEqual(segment.status, 0, segment.errors)

        // The same ensemble in the library: the files hold its mean probabilities.
        let ensemble = try SegmentationEnsemble(checkpoints: [dir + "/a.safetensors", dir + "/b.safetensors"], mirroring: true)
        let image = try NIfTI.read("\(dir)/images/case1.nii.gz")
        let (labels, probs) = try ensemble.segment([image], paths: ["case1"])
        let written = try NIfTI.read("\(dir)/probs/case1.nii.gz")
        XCTAssertEqual(written.data, probs.data)
        XCTAssertEqual(try NIfTI.read("\(dir)/pred/case1.nii.gz").data, labels.data)

        let evaluate = try MorphosegProcess.run([
            "evaluate", "--prediction", dir + "/pred", "--reference", dir + "/ref", "--json", "--csv", dir + "/metrics.csv",
        ])
        XCTAssertEqual(evaluate.status, 0, evaluate.errors)
        let json = try JSONSerialization.jsonObject(with: Data(evaluate.output.utf8)) as! [String: Any]
        XCTAssertEqual((json["cases"] as! [[String: Any]]).count, 2)
        let e = try FolderEvaluation.folders(prediction: dir + "/pred", reference: dir + "/ref")
        XCTAssertEqual(try String(contentsOfFile: dir + "/metrics.csv", encoding: .utf8), e.csv)

        // --keep-largest per-class: the plain ensemble's labels of a noise image (an untrained
        // model labels it in islands), each class reduced to its largest component.
        var rng = SeedStream.generator(seed: 9, 1)
        var noise = image
        noise.data = noise.data.map { _ in Float.random(in: -3...3, using: &rng) }
        try NIfTI.write(noise, to: dir + "/noise.nii.gz")
        let kept = try MorphosegProcess.run([
            "segment", "--model", dir + "/a.safetensors", "--model", dir + "/b.safetensors", "--tta", "--keep-largest", "per-class",
            "--input", dir + "/noise.nii.gz", "--output", dir + "/kept.nii.gz",
        ])
        XCTAssertEqual(kept.status, 0, kept.errors)
        let plain = try ensemble.segment([try NIfTI.read(dir + "/noise.nii.gz")], paths: ["noise"]).labels
        var expected = plain.data
        for k in 1..<3 { LargestComponent.keep(class: k, &expected, shape: plain.spatialShape, connectivity: .full) }
        XCTAssertNotEqual(expected, plain.data, "the plain labels have islands to remove")
        XCTAssertEqual(try NIfTI.read(dir + "/kept.nii.gz").data, expected)
        let both = try MorphosegProcess.run([
            "segment", "--model", dir + "/a.safetensors", "--no-postprocessing", "--keep-largest", "per-class",
            "--input", dir + "/images/case1.nii.gz", "--output", dir + "/x.nii.gz",
        ])
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.errors.contains("--no-postprocessing and --keep-largest exclude each other"), both.errors)

        let clash = try MorphosegProcess.run(["evaluate", "--prediction", dir + "/pred", "--reference", dir + "/ref/case0.nii.gz"])
        XCTAssertNotEqual(clash.status, 0)
        XCTAssertTrue(clash.errors.contains("both be files or both be folders"), clash.errors)
    }
}
