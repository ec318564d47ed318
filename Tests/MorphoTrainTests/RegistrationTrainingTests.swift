import Foundation
import MorphoIO
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain

final class RegistrationTrainingTests: XCTestCase {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = NSTemporaryDirectory() + "reg-train-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tempDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: tempDir)
    }

    /// A small 2D phantom registration run.
    func tinyConfig(
        epochs: Int = 10, registration: String = "", loss: String = "loss: {similarity: {kind: lcc, window: 7}}"
    ) -> String {
        """
        name: tiny-reg
        model:
          kind: registration
          unet: {dims: 2, classes: 3}
        data:
          phantom: {size: [32, 32], count: 10, noise: 0.05, seed: 3}
          normalization: {kind: percentile}
          threads: 2
        registration:
          synthetic: {smoothing: 9, max_displacement: 3}
          validation_pairs: 6
          network: {encoder: [8, 16, 16], decoder: [16, 16, 16, 8]}
          \(loss)
        \(registration)
        training:
          epochs: \(epochs)
          steps_per_epoch: 20
          batch_size: 4
          optimizer: {kind: adam, lr: 0.003}
          lr_schedule: {kind: constant}
          validate_every: 2
        """
    }

    func testShortTrainingRaisesDiceAboveUnregisteredWithoutFolding() throws {
        let config = try RegistrationRunConfig(yaml: tinyConfig())
        let summary = try TrainingRun.run(.registration(config), output: tempDir + "/run", progress: ProgressReporter(style: .quiet))
        XCTAssertEqual(summary.epochs, 10)
        let last = try XCTUnwrap(summary.history.last)
        let before = try XCTUnwrap(last.metric("dice_before")), after = try XCTUnwrap(last.metric("dice_mean"))
        print("tiny registration run: Dice \(before) → \(after), folding \(last.metric("folding_percent") ?? .nan) %")
        XCTAssertGreaterThan(after, before + 0.05)
        XCTAssertLessThan(try XCTUnwrap(last.metric("folding_percent")), 1)
        XCTAssertGreaterThan(try XCTUnwrap(last.metric("similarity")), try XCTUnwrap(last.metric("similarity_before")))
        for file in ["config.yaml", "registration.yaml", "metrics.jsonl", "best.safetensors", "last.safetensors", "curves.png", "overlay.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: tempDir + "/run/" + file), file)
        }
        XCTAssertEqual(try RegistrationRunConfig.load(tempDir + "/run/registration.yaml").registration, config.registration)
    }

    func testCheckpointLoadsAsARegistrationModelThatPredictsTheTrainedField() throws {
        let config = try RegistrationRunConfig(yaml: tinyConfig(epochs: 2))
        _ = try TrainingRun.run(.registration(config), output: tempDir + "/run", progress: ProgressReporter(style: .quiet))
        // The registration section travels inside the checkpoint: no sidecar needed.
        try FileManager.default.removeItem(atPath: tempDir + "/run/registration.yaml")
        let model = try RegistrationModel.load(tempDir + "/run/best.safetensors")
        XCTAssertEqual(model.config.registration, config.registration)
        // A phantom pair on a grid that is not a multiple of the network's size (padding + crop).
        let p = PhantomConfig(dims: 2, size: [30, 27], count: 1, classes: 3, noise: 0, bias: 0, spacing: [1, 1, 1], seed: 5)
        let (image, labels) = Phantom.make(p, index: 0)
        let synthetic = try SyntheticPair.deforming(image, labels: labels, field: SmoothRandomField(smoothing: 9, maxDisplacement: 2), seed: 4)
        let d = tempDir + "/"
        try synthetic.write(fixed: d + "f.nii.gz", moving: d + "m.nii.gz", fixedLabels: d + "fl.nii.gz", movingLabels: d + "ml.nii.gz", field: nil)
        let pair = try RegistrationPair.load(RegistrationPairFiles(
            fixed: d + "f.nii.gz", moving: d + "m.nii.gz", fixedLabels: d + "fl.nii.gz", movingLabels: d + "ml.nii.gz"))
        let flow = try model.predict(pair)
        XCTAssertEqual(flow.shape, [1, 2, 27, 30])
        XCTAssertTrue(flow.scalars.allSatisfy(\.isFinite))
        let result = try Registration.register(pair, method: .model(model))
        XCTAssertEqual(result.flow.scalars, flow.scalars)
        XCTAssertNotNil(result.quality.meanDiceAfter)
        // What `morphoseg register --model` writes: everything on the fixed geometry.
        try result.write(warped: d + "w.nii.gz", field: d + "u.nii.gz", labels: d + "wl.nii.gz", fieldUnits: .mm, pair: pair)
        let warped = try NIfTI.read(d + "w.nii.gz"), labelsOut = try NIfTI.read(d + "wl.nii.gz")
        XCTAssertTrue(warped.sameGrid(as: pair.fixed))
        XCTAssertTrue(labelsOut.sameGrid(as: pair.fixed))
        XCTAssertEqual(labelsOut.header.datatype, .int16)
        XCTAssertEqual(labelsOut.data, result.warpedLabels?.data)
        XCTAssertEqual(try NIfTI.readHeader(d + "u.nii.gz").dim, [30, 27, 1, 1, 2])
    }

    func testSegmentationCheckpointIsRefusedAsARegistrationModel() throws {
        let seg = try RunConfig(yaml: Demo.configYAML)
        let path = tempDir + "/seg.safetensors"
        try Checkpoint(config: seg, epoch: 1, rngState: [1, 2, 3, 4], bestScore: 0, bestEpoch: 1, staleValidations: 0, model: [], optimizer: [])
            .write(to: path)
        XCTAssertThrowsError(try RegistrationModel.load(path)) { error in
            XCTAssertTrue("\(error)".hasPrefix(path + ": a segmentation checkpoint"), "\(error)")
        }
    }

    func testRegistrationSectionErrorsNameTheKey() {
        func message(_ registration: String) -> String {
            do {
                _ = try RegistrationRunConfig(yaml: tinyConfig(registration: registration), file: "x.yaml")
                return "no error"
            } catch { return "\(error)" }
        }
        XCTAssertEqual(message("  pairs: everything"),
                       "x.yaml: registration.pairs: expected one of synthetic, random, atlas, listed, got \"everything\"")
        XCTAssertTrue(message("  extra: 1").hasPrefix("x.yaml: registration.extra: unknown key"))
        XCTAssertEqual(message("  pairs: atlas"), "x.yaml: registration.atlas: pairs: atlas needs the atlas image")
        func lossMessage(_ loss: String) -> String {
            do {
                _ = try RegistrationRunConfig(yaml: tinyConfig(loss: loss), file: "x.yaml")
                return "no error"
            } catch { return "\(error)" }
        }
        XCTAssertTrue(lossMessage("loss: {smoothness: {kind: grad_l2, wieght: 1}}").hasPrefix("x.yaml: registration.loss.smoothness.wieght: unknown key"))
        XCTAssertEqual(lossMessage("loss: {similarity: {window: 8}}"), "x.yaml: registration.loss.similarity.window: must be odd, got 8")
        XCTAssertEqual(lossMessage("loss: {dice: {weight: {start: 0.1, step: 0.05, cap: 0.5}}}"), "no error")
    }

    func testResolvedConfigLoadsBackToTheSameConfig() throws {
        let config = try RegistrationRunConfig(yaml: tinyConfig(loss: "loss: {dice: {weight: {start: 0.1, step: 0.05, cap: 0.5}}}"))
        XCTAssertEqual(try RegistrationRunConfig(yaml: config.yaml), config)
        let weight = config.registration.diceWeight.schedule
        XCTAssertEqual(weight.weight(epoch: 2), 0.2, accuracy: 1e-12)
        XCTAssertEqual(weight.weight(epoch: 20), 0.5)
    }

    func testDemoConfigIsARegistrationRun() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Configs/demo-reg.yaml").path
        let config = try RegistrationRunConfig.load(path)
        XCTAssertEqual(config.run.model.kind, .registration)
        XCTAssertEqual(config.registration.pairs, .synthetic)
    }

    func testSemiSupervisedDiceTermNeedsLabelsAndIsLogged() throws {
        let config = try RegistrationRunConfig(yaml: tinyConfig(loss: "loss: {dice: {weight: 0.5}}"))
        let task = try RegistrationTask(config: config)
        let batch = task.makeBatch(1, 0)
        XCTAssertEqual(batch.fixed.shape, [4, 1, 32, 32])
        XCTAssertNotNil(batch.movingLabels)
        let value = task.loss(batch, epoch: 0)
        XCTAssertEqual(value.terms.map(\.name), ["lcc", "grad_l2", "dice"])
        XCTAssertEqual(value["dice"]?.weight, 0.5)
        XCTAssertTrue(value.total.item.isFinite)
    }

    func testSoftDiceLossGradientMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 11)
        let logits = Tensor.randomNormal([2, 3, 5, 6], using: &rng)
        let labels = Tensor(shape: [2, 1, 5, 6], data: (0..<60).map { Float($0 % 3) })
        let target = oneHot(labels, classes: 3)
        XCTAssertEqual(target.sum().item, 60)
        let check = GradientCheck.check([logits.softmax()], h: 1e-3, rtol: 2e-2) { xs in softDiceLoss(xs[0], target) }
        XCTAssertTrue(check.passed, "\(check)")
        XCTAssertGreaterThan(check.maxReference, 0)
        XCTAssertEqual(softDiceLoss(target, target).item, 0, accuracy: 1e-6)
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
        model: {kind: registration, unet: {dims: 3, classes: 3}}
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

    func testDiffeomorphicHalfResolutionNetworkGivesFullResolutionFieldsWithoutFolding() throws {
        let yaml = tinyConfig(epochs: 4).replacingOccurrences(
            of: "network: {encoder: [8, 16, 16], decoder: [16, 16, 16, 8]}",
            with: "network: {encoder: [8, 16, 16], decoder: [16, 16, 16, 8], integration_steps: 7, half_resolution: true}")
        let config = try RegistrationRunConfig(yaml: yaml)
        XCTAssertEqual(config.registration.network.integrationSteps, 7)
        XCTAssertTrue(config.registration.network.halfResolution)
        let summary = try TrainingRun.run(.registration(config), output: tempDir + "/run", progress: ProgressReporter(style: .quiet))
        let last = try XCTUnwrap(summary.history.last)
        XCTAssertGreaterThan(try XCTUnwrap(last.metric("dice_mean")), try XCTUnwrap(last.metric("dice_before")))
        XCTAssertLessThan(try XCTUnwrap(last.metric("folding_percent")), 0.5)
        let model = try RegistrationModel.load(tempDir + "/run/last.safetensors")
        XCTAssertEqual(model.config.registration.network, config.registration.network)
        let task = try RegistrationTask(config: config)
        let batch = task.dataset.batch([task.dataset.validation[0]])
        let flow = withoutGradients { model.network(moving: batch.moving, fixed: batch.fixed) }
        XCTAssertEqual(flow.shape, [1, 2, 32, 32])
    }
}

