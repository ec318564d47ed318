import Foundation
import MorphoIO
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// Dataset folders in the nnU-Net v2 and Decathlon layouts become case lists; each defect is one
/// line naming the file.
final class DatasetFolderTests: XCTestCase {
    func testNNUNetFolderListsChannelsLabelsAndCases() throws {
        let root = try temporaryFolder("nnunet")
        try PhantomDatasetFolder.nnUNet(at: root, training: 3, test: 2, channels: 2)
        let d = try DatasetFolder.read(root)
        XCTAssertEqual(d.layout, .nnUNet)
        XCTAssertEqual(d.channels, ["T1", "T2"])
        XCTAssertEqual(d.labels, ["background", "outer", "inner"])
        XCTAssertEqual(d.training.map(\.id), ["case_000", "case_001", "case_002"])
        XCTAssertEqual(d.training[1].images, ["\(root)/imagesTr/case_001_0000.nii.gz", "\(root)/imagesTr/case_001_0001.nii.gz"])
        XCTAssertEqual(d.training[1].label, "\(root)/labelsTr/case_001.nii.gz")
        XCTAssertEqual(d.test.map(\.id), ["case_003", "case_004"])
        XCTAssertNil(d.test[0].label)
        XCTAssertEqual(try DatasetFolder.channelNames(root), ["T1", "T2"])
        XCTAssertNoThrow(try DatasetCheck.run(d))
    }

    func testDecathlonFolderReadsFourDimensionalImagesAsChannels() throws {
        let root = try temporaryFolder("msd")
        try PhantomDatasetFolder.decathlon(at: root, training: 3, test: 1, channels: 2)
        let d = try DatasetFolder.read(root)
        XCTAssertEqual(d.layout, .decathlon)
        XCTAssertEqual(d.channels, ["FLAIR", "T1w"])
        XCTAssertEqual(d.labels, ["background", "outer", "inner"])
        XCTAssertEqual(d.training.map(\.id), ["case_000", "case_001", "case_002"])
        XCTAssertEqual(d.training[0].images, ["\(root)/imagesTr/case_000.nii.gz"])
        XCTAssertEqual(d.test.map(\.images), [["\(root)/imagesTs/case_003.nii.gz"]])
        XCTAssertNoThrow(try DatasetCheck.run(d))
        let raw = try SegmentationDataset.read(d.training[0], classes: 3, declaredLabels: d.labels)
        XCTAssertEqual(raw.image.channels, 2)
        XCTAssertEqual(Array(raw.image.channel(1)), raw.image.channel(0).map { -$0 })
    }

    func testMissingChannelFileIsNamed() throws {
        let root = try temporaryFolder("nnunet")
        try PhantomDatasetFolder.nnUNet(at: root, training: 2, channels: 2)
        try FileManager.default.removeItem(atPath: "\(root)/imagesTr/case_001_0001.nii.gz")
        XCTAssertThrowsError(try DatasetFolder.read(root)) {
            XCTAssertEqual("\($0)", "\(root)/imagesTr/case_001_0001.nii.gz: no such image (channel 1) file")
        }
    }

    func testImageWithoutLabelIsNamed() throws {
        let root = try temporaryFolder("nnunet")
        try PhantomDatasetFolder.nnUNet(at: root, training: 2)
        try FileManager.default.removeItem(atPath: "\(root)/labelsTr/case_000.nii.gz")
        XCTAssertThrowsError(try DatasetFolder.read(root)) {
            XCTAssertEqual("\($0)", "\(root)/imagesTr/case_000_0000.nii.gz: no label map labelsTr/case_000.nii.gz for this image")
        }
    }

    func testNumTrainingMustMatchTheLabelMaps() throws {
        let root = try temporaryFolder("nnunet")
        try PhantomDatasetFolder.nnUNet(at: root, training: 2)
        let path = "\(root)/dataset.json"
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "\"numTraining\": 2", with: "\"numTraining\": 5")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try DatasetFolder.read(root)) {
            XCTAssertEqual("\($0)", "\(path): numTraining: says 5, labelsTr holds 2 label maps")
        }
    }

    func testLabelsWithAGapAreRefused() throws {
        let root = try temporaryFolder("msd")
        try PhantomDatasetFolder.decathlon(at: root, training: 1)
        let path = "\(root)/dataset.json"
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "\"2\": \"inner\"", with: "\"3\": \"inner\"")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try DatasetFolder.read(root)) {
            XCTAssertEqual("\($0)", "\(path): labels: label values must be 0..<3 without gaps; 2 is missing")
        }
    }

    func testUndeclaredLabelValueIsNamedWithTheDeclaredLabels() throws {
        let root = try temporaryFolder("nnunet")
        try PhantomDatasetFolder.nnUNet(at: root, training: 2)
        let labelPath = "\(root)/labelsTr/case_001.nii.gz"
        var label = try NIfTI.read(labelPath)
        label.data[7] = 4
        try NIfTI.write(label, to: labelPath, datatype: .uint8)
        XCTAssertThrowsError(try DatasetCheck.run(try DatasetFolder.read(root))) {
            XCTAssertEqual("\($0)", "\(labelPath): label value 4 is not declared in dataset.json (labels: 0 background, 1 outer, 2 inner)")
        }
    }

    func testImageAndLabelOnDifferentGridsAreNamedFromTheHeaders() throws {
        let root = try temporaryFolder("nnunet")
        try PhantomDatasetFolder.nnUNet(at: root, training: 2, channels: 2)
        let path = "\(root)/imagesTr/case_001_0001.nii.gz"
        var moved = try NIfTI.read(path)
        var shifted = Affine.identity
        shifted.matrix[0][3] = 5
        moved = Volume(depth: 1, height: moved.height, width: moved.width, data: moved.data, affine: shifted)
        try NIfTI.write(moved, to: path)
        XCTAssertThrowsError(try DatasetCheck.headers(try DatasetFolder.read(root))) {
            XCTAssertEqual("\($0)", "\(root)/imagesTr/case_001_0000.nii.gz and \(path) are not on the same voxel grid: voxel-to-world affines differ")
        }
        let small = Volume(depth: 1, height: 8, width: 8, data: [Float](repeating: 0, count: 64))
        try NIfTI.write(small, to: "\(root)/labelsTr/case_000.nii.gz", datatype: .uint8)
        XCTAssertThrowsError(try DatasetCheck.headers(try DatasetFolder.read(root))) {
            XCTAssertEqual(
                "\($0)",
                "\(root)/imagesTr/case_000_0000.nii.gz and \(root)/labelsTr/case_000.nii.gz are not on the same voxel grid: sizes (x, y, z) [32, 32, 1] vs [8, 8, 1]")
        }
    }

    func testDecathlonImageWithTooFewChannelsIsNamed() throws {
        let root = try temporaryFolder("msd")
        try PhantomDatasetFolder.decathlon(at: root, training: 2, channels: 2)
        let path = "\(root)/imagesTr/case_001.nii.gz"
        let v = try NIfTI.read(path)
        try NIfTI.write(Volume(depth: 1, height: v.height, width: v.width, data: Array(v.data.prefix(v.spatialCount))), to: path)
        XCTAssertThrowsError(try DatasetCheck.headers(try DatasetFolder.read(root))) {
            XCTAssertEqual("\($0)", "\(path): has 1 channel(s), expected 2 (dataset.json declares FLAIR, T1w)")
        }
    }

    func testMissingDescriptionIsNamed() throws {
        let root = try temporaryFolder("empty")
        XCTAssertThrowsError(try DatasetFolder.read(root)) {
            XCTAssertEqual("\($0)", "\(root)/dataset.json: no such dataset description file")
        }
    }
}
