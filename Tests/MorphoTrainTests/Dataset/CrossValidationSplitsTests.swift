import Foundation
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// `data.folds: K` with `train --fold k`: folds by subject, saved once as `splits.json` and reused.
final class CrossValidationSplitsTests: XCTestCase, QuietTraining {
    /// 11 cases of 6 subjects (s0 has three cases, s1 and s2 two).
    let cases: [(id: String, subject: String?)] = [
        ("a0", "s0"), ("a1", "s0"), ("a2", "s0"), ("b0", "s1"), ("b1", "s1"), ("c0", "s2"), ("c1", "s2"),
        ("d", nil), ("e", nil), ("f", nil), ("g", "s3"),
    ]

    func testFoldsValidateEveryCaseOnceAndKeepEachSubjectOnOneSide() throws {
        let folds = try CrossValidationSplits.make(cases: cases, folds: 3, seed: 0, source: "test")
        XCTAssertEqual(folds.count, 3)
        let allIDs = cases.map(\.id).sorted()
        XCTAssertEqual(folds.flatMap(\.val).sorted(), allIDs)
        let subjectOf = Dictionary(uniqueKeysWithValues: cases.map { ($0.id, $0.subject ?? $0.id) })
        for f in folds {
            XCTAssertEqual((f.train + f.val).sorted(), allIDs)
            XCTAssertTrue(Set(f.train).isDisjoint(with: f.val))
            XCTAssertTrue(Set(f.train.map { subjectOf[$0]! }).isDisjoint(with: f.val.map { subjectOf[$0]! }))
            XCTAssertFalse(f.val.isEmpty)
        }
    }

    func testSplitsAreStableAcrossCallsAndCaseOrder() throws {
        let first = try CrossValidationSplits.make(cases: cases, folds: 5, seed: 3, source: "test")
        XCTAssertEqual(try CrossValidationSplits.make(cases: cases, folds: 5, seed: 3, source: "test"), first)
        XCTAssertEqual(try CrossValidationSplits.make(cases: cases.reversed(), folds: 5, seed: 3, source: "test"), first)
        // The JSON (nnU-Net's splits_final.json shape) reads back as written.
        let path = try temporaryFolder("splits") + "/splits.json"
        try CrossValidationSplits.json(first).write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try CrossValidationSplits.read(path), first)
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [[String: [String]]]
        XCTAssertEqual(object.map { Set($0.keys) }, Array(repeating: ["train", "val"], count: 5))
    }

    func testManifestSubjectColumnKeepsASubjectsCasesInOneFold() throws {
        let dir = try temporaryFolder("manifest")
        var rows = ["id,subject,image,label"]
        for (subject, visits) in [("p1", 3), ("p2", 2), ("p3", 1), ("p4", 2)] {
            for v in 0..<visits {
                let id = "\(subject)_v\(v)"
                for f in ["\(id).nii.gz", "\(id)_seg.nii.gz"] { FileManager.default.createFile(atPath: "\(dir)/\(f)", contents: Data([0])) }
                rows.append("\(id),\(subject),\(id).nii.gz,\(id)_seg.nii.gz")
            }
        }
        try rows.joined(separator: "\n").write(toFile: dir + "/m.csv", atomically: true, encoding: .utf8)
        let files = try CaseList.manifest(dir + "/m.csv", modalities: ["image"])
        XCTAssertEqual(files.map(\.subject), ["p1", "p1", "p1", "p2", "p2", "p3", "p4", "p4"])
        let folds = try CrossValidationSplits.make(cases: files.map { ($0.id, $0.subject) }, folds: 4, seed: 0, source: "m.csv")
        // Four subjects, four folds: each fold validates on exactly one subject's visits.
        for f in folds {
            XCTAssertEqual(Set(f.val.map { $0.prefix(2) }).count, 1, "\(f.val)")
        }
        XCTAssertEqual(folds.map(\.val.count).sorted(), [1, 2, 2, 3])
    }

    func testMoreFoldsThanSubjectsIsAnError() {
        XCTAssertThrowsError(try CrossValidationSplits.make(cases: Array(cases.prefix(5)), folds: 3, seed: 0, source: "x.csv")) {
            XCTAssertEqual("\($0)", "x.csv: data.folds: 3 needs at least 3 subjects, found 2")
        }
    }

    func writeConfig(_ root: String, folds: String, to path: String, output: String) throws {
        try """
            name: folds
            model:
              unet: {dims: 2, channels: [8, 16], classes: 3}
            data:
              dataset: \(root)
              validation: {fraction: 0.5}
              patch: {size: [32, 32]}
              threads: 1
              \(folds)
            training:
              epochs: 1
              steps_per_epoch: 2
              batch_size: 2
              optimizer: {kind: adam, lr: 0.01}
            output: {dir: \(output), plots: false}
            """.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func testTrainFoldOneTrainsOnThatFoldsCasesAndReusesTheSavedSplit() throws {
        let root = try temporaryFolder("nnunet")
        try PhantomDatasetFolder.nnUNet(at: root, training: 6)
        let work = try temporaryFolder("run")
        let configPath = work + "/folds.yaml"
        try writeConfig(root, folds: "folds: 3", to: configPath, output: work + "/runs")

        let (_, dir) = try TrainingRun.start(configPath: configPath, output: nil, fold: 1, progress: quiet())
        XCTAssertEqual(dir, work + "/runs/fold_1")
        let splits = try CrossValidationSplits.read(root + "/splits.json")
        XCTAssertEqual(splits.count, 3)
        XCTAssertEqual(splits.flatMap(\.val).sorted(), (0..<6).map { String(format: "case_%03d", $0) })
        // The run folder's resolved config records the fold and the split; loading it gives
        // fold 1's training and validation cases (not the 0.5 validation fraction).
        let saved = try RunConfig.load(dir + "/config.yaml")
        XCTAssertEqual(saved.data.fold, 1)
        XCTAssertEqual(saved.data.splits, root + "/splits.json")
        let dataset = try SegmentationDataset.load(saved, distances: false)
        XCTAssertEqual(dataset.training.map(\.id).sorted(), splits[1].train)
        XCTAssertEqual(dataset.validation.map(\.id).sorted(), splits[1].val)
        let checkpoint = try Checkpoint.read(dir + "/last.safetensors")
        XCTAssertEqual(checkpoint.config.data.fold, 1)

        // An existing splits.json is read, not remade: a hand-written split is the one used.
        let custom = [
            CrossValidationSplits.Fold(train: ["case_002", "case_003", "case_004", "case_005"], val: ["case_000", "case_001"]),
            CrossValidationSplits.Fold(train: ["case_000", "case_001", "case_004", "case_005"], val: ["case_002", "case_003"]),
            CrossValidationSplits.Fold(train: ["case_000", "case_001", "case_002", "case_003"], val: ["case_004", "case_005"]),
        ]
        try CrossValidationSplits.json(custom).write(toFile: root + "/splits.json", atomically: true, encoding: .utf8)
        let reused = try SegmentationDataset.load(saved, distances: false)
        XCTAssertEqual(reused.validation.map(\.id).sorted(), ["case_002", "case_003"])
        XCTAssertEqual(reused.training.map(\.id).sorted(), custom[1].train)
    }

    func testFoldWithoutFoldsOrBeyondThemIsAOneLineError() throws {
        let root = try temporaryFolder("nnunet")
        try PhantomDatasetFolder.nnUNet(at: root, training: 4)
        let work = try temporaryFolder("run")
        let plain = work + "/plain.yaml", three = work + "/three.yaml"
        try writeConfig(root, folds: "", to: plain, output: work + "/runs")
        try writeConfig(root, folds: "folds: 3", to: three, output: work + "/runs")
        XCTAssertThrowsError(try TrainingRun.start(configPath: plain, output: nil, fold: 1, progress: quiet())) {
            XCTAssertEqual("\($0)", "\(plain): data.folds: --fold 1 needs data.folds: K in the config")
        }
        XCTAssertThrowsError(try TrainingRun.start(configPath: three, output: nil, fold: 3, progress: quiet())) {
            XCTAssertEqual("\($0)", "\(three): data.folds: --fold must be in 0..<3, got 3")
        }
        XCTAssertThrowsError(try RunConfig(yaml: "model: {unet: {dims: 2}}\ndata: {dataset: \(root), folds: 1}")) {
            XCTAssertEqual("\($0)", "<config>: data.folds: must be at least 2, got 1")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/runs"))
    }
}
