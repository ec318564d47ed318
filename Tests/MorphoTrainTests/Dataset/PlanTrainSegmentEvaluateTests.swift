import Foundation
import MorphoIO
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// The phantom pipeline through the executable: `plan` a dataset folder, `train` the
/// config it wrote unchanged, `segment --tta` the held-out cases, `evaluate` the folder.
final class PlanTrainSegmentEvaluateTests: XCTestCase {
    func testPhantomDatasetFromPlanToEvaluation() throws {
        let dir = try temporaryFolder("pipeline")
        let root = dir + "/Dataset001_Phantom"
        // 10 labelled cases: 8 for training (the plan holds out 20 %), 2 kept aside as test cases,
        // named as in imagesTs (<case>_0000): segment names the predictions <case> like the references.
        try PhantomDatasetFolder.nnUNet(at: root, training: 10)
        for folder in ["test", "reference", "prediction"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(folder)", withIntermediateDirectories: true)
        }
        for id in ["case_008", "case_009"] {
            try FileManager.default.moveItem(atPath: "\(root)/imagesTr/\(id)_0000.nii.gz", toPath: "\(dir)/test/\(id)_0000.nii.gz")
            try FileManager.default.moveItem(atPath: "\(root)/labelsTr/\(id).nii.gz", toPath: "\(dir)/reference/\(id).nii.gz")
        }
        let json = "\(root)/dataset.json"
        try String(contentsOfFile: json, encoding: .utf8).replacingOccurrences(of: "\"numTraining\": 10", with: "\"numTraining\": 8")
            .write(toFile: json, atomically: true, encoding: .utf8)

        try pipeline(dir: dir, root: root, testFolder: dir + "/test", model: "/run/best.safetensors", trainArguments: [])
    }

    /// The same in the Decathlon layout (two channels in one 4D file per case), training one
    /// short fold of the plan's folds and segmenting with the run folder as the model (its fold
    /// ensemble: fold 0 alone here).
    func testDecathlonPhantomDatasetFromPlanToEvaluationOfOneFold() throws {
        let dir = try temporaryFolder("pipeline-msd")
        let root = dir + "/Task01_Phantom"
        try PhantomDatasetFolder.decathlon(at: root, training: 10, channels: 2)
        for folder in ["test", "reference", "prediction"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(folder)", withIntermediateDirectories: true)
        }
        let json = "\(root)/dataset.json"
        var text = try String(contentsOfFile: json, encoding: .utf8).replacingOccurrences(of: "\"numTraining\": 10", with: "\"numTraining\": 8")
        for id in ["case_008", "case_009"] {
            try FileManager.default.moveItem(atPath: "\(root)/imagesTr/\(id).nii.gz", toPath: "\(dir)/test/\(id).nii.gz")
            try FileManager.default.moveItem(atPath: "\(root)/labelsTr/\(id).nii.gz", toPath: "\(dir)/reference/\(id).nii.gz")
            let entry = ", {\"image\": \"./imagesTr/\(id).nii.gz\", \"label\": \"./labelsTr/\(id).nii.gz\"}"
            XCTAssertTrue(text.contains(entry))
            text = text.replacingOccurrences(of: entry, with: "")
        }
        try text.write(toFile: json, atomically: true, encoding: .utf8)
        try pipeline(dir: dir, root: root, testFolder: dir + "/test", model: "/run", trainArguments: ["--fold", "0"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/run/fold_0/best.safetensors"))
        XCTAssertEqual(try RunConfig.load(dir + "/plan.yaml").data.modalities, ["FLAIR", "T1w"])
    }

    /// plan → train (config unchanged) → segment --tta → evaluate --json; Dice of both labels.
    private func pipeline(dir: String, root: String, testFolder: String, model: String, trainArguments: [String],
                          file: StaticString = #filePath, line: UInt = #line) throws {
        let plan = try MorphosegProcess.run(["plan", root, "--output", dir + "/plan.yaml", "--budget", "0.4"])
        XCTAssertEqual(plan.status, 0, plan.errors)
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/fingerprint.json"))
        let config = try RunConfig.load(dir + "/plan.yaml")
        XCTAssertEqual(config.model.unet.dims, 2)

        let train = try MorphosegProcess.run(["train", "--config", dir + "/plan.yaml", "--output", dir + "/run"] + trainArguments)
        XCTAssertEqual(train.status, 0, train.errors)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/run" + (trainArguments.isEmpty ? "" : "/fold_0") + "/postprocessing.json"), file: file, line: line)

        let segment = try MorphosegProcess.run([
            "segment", "--model", dir + model, "--tta", "--input", testFolder, "--output", dir + "/prediction",
        ])
        XCTAssertEqual(segment.status, 0, segment.errors)
        let evaluate = try MorphosegProcess.run(["evaluate", "--prediction", dir + "/prediction", "--reference", dir + "/reference", "--json"])
        XCTAssertEqual(evaluate.status, 0, evaluate.errors)
        let summary = (try JSONSerialization.jsonObject(with: Data(evaluate.output.utf8)) as! [String: Any])["summary"] as! [[String: Any]]
        let dice = summary.map { ($0["dice"] as! [String: Any])["mean"] as! Double }
        XCTAssertEqual(dice.count, 2)
        // A few seconds of training on 8 phantoms: the outer class is found, the inner one mostly.
        XCTAssertGreaterThan(dice[0], 0.7, evaluate.output)
        print("pipeline Dice per label: \(dice)")
    }
}
