import Foundation
import MorphoIO
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// Which pairs a registration run trains and validates on: pair lists, atlas pairs, drawn pairs.
final class RegistrationDatasetTests: XCTestCase {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("reg-train")
    }

    func testPairListResolvesPathsRelativeToItsFolder() throws {
        let path = tempDir + "/pairs.csv"
        try "fixed,moving,fixed_labels,moving_labels,split\na.nii.gz,/abs/b.nii.gz,,b_seg.nii.gz,validation\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let rows = try PairList.read(path)
        XCTAssertEqual(rows, [PairList.Row(
            files: RegistrationPairFiles(fixed: tempDir + "/a.nii.gz", moving: "/abs/b.nii.gz", fixedLabels: nil,
                                         movingLabels: tempDir + "/b_seg.nii.gz"),
            split: "validation")])
        try "fixed,image\na,b\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PairList.read(path)) { error in
            XCTAssertTrue("\(error)".hasPrefix(path + ": needs columns fixed and moving"), "\(error)")
        }
    }

    /// Three 3D phantoms written as files, the third on a coarser, shifted grid.
    func writeSubjects() throws -> [(image: String, labels: String)] {
        try (0..<3).map { i in
            let p = PhantomConfig(dims: 3, size: [20, 18, 16], count: 3, classes: 3, noise: 0, bias: 0,
                                  spacing: i == 2 ? [1.5, 1.5, 1.5] : [1, 1, 1], seed: 4)
            let (image, labels) = Phantom.make(p, index: i)
            let paths = (tempDir + "/s\(i).nii.gz", tempDir + "/s\(i)_seg.nii.gz")
            try NIfTI.write(image, to: paths.0)
            try NIfTI.write(labels, to: paths.1, datatype: .uint8)
            return paths
        }
    }

    func config3D(_ registration: String, manifest: String) -> String {
        """
        name: files-reg
        model: {kind: registration, network: {dims: 3, classes: 3}}
        data: {manifest: \(manifest), normalization: {kind: percentile}, validation: {fraction: 0.34}}
        registration:
        \(registration)
          network: {encoder: [4, 8], decoder: [8, 8, 4]}
        training: {epochs: 1, steps_per_epoch: 2, batch_size: 2}
        """
    }

    func testAtlasPairsBringEverySubjectOntoTheAtlasGrid() throws {
        let subjects = try writeSubjects()
        let manifest = tempDir + "/subjects.csv"
        try ("image,label\n" + subjects.map { "\($0.image),\($0.labels)" }.joined(separator: "\n") + "\n")
            .write(toFile: manifest, atomically: true, encoding: .utf8)
        let config = try RegistrationRunConfig(yaml: config3D("""
              pairs: atlas
              atlas: \(subjects[0].image)
              atlas_labels: \(subjects[0].labels)
            """, manifest: manifest))
        let dataset = try RegistrationDataset.load(config)
        XCTAssertEqual(dataset.pairs.count + dataset.validation.count, 3)
        XCTAssertEqual(dataset.validation.count, 1)
        XCTAssertEqual(dataset.classes, 3)
        // The atlas grid (16×18×20) padded to the network's multiple (4): every pair shares it.
        XCTAssertEqual(dataset.shape, [16, 20, 20])
        for pair in dataset.pairs + dataset.validation {
            XCTAssertEqual(pair.fixed.image.shape, dataset.shape)
            XCTAssertEqual(pair.moving.image.shape, dataset.shape)
            XCTAssertNotNil(pair.moving.labels)
        }
        let task = try RegistrationTask(config: config, dataset: dataset)
        let batch = task.makeBatch(3, 1)
        XCTAssertEqual(batch.fixed.shape, [2, 1, 16, 20, 20])
        XCTAssertTrue(task.loss(batch, epoch: 0).total.item.isFinite)
    }

    func testListedPairsFollowTheirSplitColumn() throws {
        let s = try writeSubjects()
        let list = tempDir + "/pairs.csv"
        try """
            fixed,moving,fixed_labels,moving_labels,split
            \(s[0].image),\(s[1].image),\(s[0].labels),\(s[1].labels),train
            \(s[1].image),\(s[2].image),\(s[1].labels),\(s[2].labels),train
            \(s[2].image),\(s[0].image),\(s[2].labels),\(s[0].labels),validation

            """.write(toFile: list, atomically: true, encoding: .utf8)
        let config = try RegistrationRunConfig(yaml: config3D("  pairs: listed", manifest: list))
        let dataset = try RegistrationDataset.load(config)
        XCTAssertEqual(dataset.pairs.count, 2)
        XCTAssertEqual(dataset.validation.count, 1)
        let task = try RegistrationTask(config: config, dataset: dataset)
        let metrics = try withoutGradients { try task.validate() }
        XCTAssertEqual(metrics.first?.name, "dice_mean")
        XCTAssertNotNil(metrics.first { $0.name == "folding_percent" })
    }

    func testDrawnPairModesFollowTheManifestSplitColumn() throws {
        let s = try writeSubjects()
        let manifest = tempDir + "/subjects.csv"
        try """
            id,image,label,split
            a,\(s[0].image),\(s[0].labels),train
            b,\(s[1].image),\(s[1].labels),validation
            c,\(s[2].image),\(s[2].labels),train

            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        for mode in ["random", "synthetic"] {
            // config3D asks for a seeded fraction of 0.34 too: the split column wins over it.
            let config = try RegistrationRunConfig(yaml: config3D("  pairs: \(mode)\n  validation_pairs: 2", manifest: manifest))
            let dataset = try RegistrationDataset.load(config)
            XCTAssertEqual(dataset.images.map(\.id), ["a", "c"], mode)
            XCTAssertEqual(dataset.validation.count, 2, mode)
            // One held-out image: its validation pairs are deformations of it.
            for pair in dataset.validation {
                XCTAssertEqual([pair.fixed.id, pair.moving.id], ["b-a", "b-b"], mode)
                XCTAssertNotNil(pair.fixed.labels)
                XCTAssertEqual(pair.fixed.image.shape, dataset.shape)
            }
        }
        try """
            image,label,split
            \(s[0].image),\(s[0].labels),validation
            \(s[1].image),\(s[1].labels),validation

            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        let config = try RegistrationRunConfig(yaml: config3D("  pairs: random", manifest: manifest))
        XCTAssertThrowsError(try RegistrationDataset.load(config)) { error in
            XCTAssertTrue("\(error)".contains("no training subjects left"), "\(error)")
        }
    }
}
