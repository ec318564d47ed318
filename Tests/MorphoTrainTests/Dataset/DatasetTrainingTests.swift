import Foundation
import MorphoIO
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// `data.dataset: FOLDER` makes `train` read an nnU-Net or Decathlon folder, and the run ends
/// with its postprocessing decided on the validation cases and stored in the checkpoint.
final class DatasetTrainingTests: XCTestCase, QuietTraining {
    func config(_ root: String, classes: Int = 3, extra: String = "") throws -> RunConfig {
        try RunConfig(yaml: """
            name: folder
            model:
              unet: {dims: 2, channels: [8, 16], classes: \(classes)}
            data:
              dataset: \(root)
              validation: {fraction: 0.25}
              patch: {size: [32, 32]}
              threads: 1
              \(extra)
            training:
              epochs: 2
              steps_per_epoch: 6
              batch_size: 4
              optimizer: {kind: adam, lr: 0.01}
            """)
    }

    func testNNUNetFolderTrainsAndStoresThePostprocessingDecision() throws {
        let root = try temporaryFolder("nnunet")
        try PhantomDatasetFolder.nnUNet(at: root, training: 8, channels: 2)
        let c = try config(root)
        XCTAssertEqual(c.data.modalities, ["T1", "T2"])
        XCTAssertEqual(c.inputChannels, 2)
        let dataset = try SegmentationDataset.load(c, distances: false)
        XCTAssertEqual(dataset.training.count + dataset.validation.count, 8)
        XCTAssertEqual(dataset.validation.count, 2)

        let out = try temporaryFolder("run")
        _ = try TrainingRun.run(.segmentation(c), output: out, progress: quiet())
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/postprocessing.json"))) as! [String: Any]
        XCTAssertEqual(record["validation_cases"] as? Int, 2)
        let planData = try JSONSerialization.data(withJSONObject: record["plan"]!)
        let plan = try XCTUnwrap(PostprocessingPlan(json: String(decoding: planData, as: UTF8.self)))
        for file in ["best", "last"] {
            let segmenter = try Segmenter(checkpoint: "\(out)/\(file).safetensors")
            XCTAssertEqual(segmenter.postprocessing, plan, file)
            XCTAssertEqual(segmenter.config.data.modalities, ["T1", "T2"])
        }
        // The resolved config names the folder and its channels, so it parses on its own.
        XCTAssertEqual(try RunConfig(yaml: c.yaml).data.source, .dataset(root))
    }

    func testDecathlonFolderTrainsFromFourDimensionalImages() throws {
        let root = try temporaryFolder("msd")
        try PhantomDatasetFolder.decathlon(at: root, training: 6, test: 1, channels: 2)
        let c = try config(root)
        XCTAssertEqual(c.data.modalities, ["FLAIR", "T1w"])
        let out = try temporaryFolder("run")
        let summary = try TrainingRun.run(.segmentation(c), output: out, progress: quiet())
        XCTAssertEqual(summary.epochs, 2)
        // The 4D test image is segmented as one input holding both modalities.
        let test = try DatasetFolder.read(root).test[0]
        try Segmenter(checkpoint: out + "/best.safetensors").segmentFiles(inputs: test.images, output: out + "/test.nii.gz")
        let image = try NIfTI.read(test.images[0])
        XCTAssertTrue(try NIfTI.read(out + "/test.nii.gz").sameGrid(as: image))
    }

    func testClassesMustBeTheDeclaredLabels() throws {
        let root = try temporaryFolder("nnunet")
        try PhantomDatasetFolder.nnUNet(at: root, training: 2)
        XCTAssertThrowsError(try SegmentationDataset.load(try config(root, classes: 4), distances: false)) {
            XCTAssertEqual("\($0)", "folder: model.unet.classes: is 4, \(root)/dataset.json declares 3 labels (background, outer, inner)")
        }
        XCTAssertThrowsError(try SegmentationDataset.load(try config(root, extra: "modalities: [CT]"), distances: false)) {
            XCTAssertEqual("\($0)", "folder: data.modalities: CT differ from \(root)/dataset.json's channels T1")
        }
    }

    func testAnUndeclaredLabelStopsLoadingWithTheFileNamed() throws {
        let root = try temporaryFolder("nnunet")
        try PhantomDatasetFolder.nnUNet(at: root, training: 3)
        let path = "\(root)/labelsTr/case_002.nii.gz"
        var label = try NIfTI.read(path)
        label.data[0] = 3
        try NIfTI.write(label, to: path, datatype: .uint8)
        XCTAssertThrowsError(try SegmentationDataset.load(try config(root), distances: false)) {
            XCTAssertEqual("\($0)", "\(path): label value 3 is not declared in dataset.json (labels: 0 background, 1 outer, 2 inner)")
        }
    }
}
