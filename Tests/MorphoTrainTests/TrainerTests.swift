import Foundation
import MorphoIO
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain

final class TrainerTests: XCTestCase {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = NSTemporaryDirectory() + "trainer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tempDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: tempDir)
    }

    /// A small 2D phantom run (about a second per epoch on 2 cores).
    func phantomConfig(epochs: Int, steps: Int = 10, loss: String = "{regional: dice_ce}", extra: String = "") throws -> RunConfig {
        try RunConfig(yaml: """
            name: tiny
            model:
              unet: {dims: 2, channels: [8, 16, 32], classes: 3}
            data:
              phantom: {size: [48, 48], count: 12, seed: 2}
              augmentation: {flip: [x], rotation: 10, scaling: 0.1, intensity: 0.1}
              threads: 2
            loss: \(loss)
            training:
              epochs: \(epochs)
              steps_per_epoch: \(steps)
              batch_size: 4
              optimizer: {kind: adam, lr: 0.003}
              validate_every: 1
            \(extra)
            """)
    }

    func quiet() -> ProgressReporter { ProgressReporter(style: .quiet) }

    func testShortTrainingRunLearnsThePhantom() throws {
        let config = try phantomConfig(epochs: 8, steps: 12)
        let summary = try TrainingRun.run(.segmentation(config), output: tempDir + "/run", progress: quiet())
        XCTAssertEqual(summary.epochs, 8)
        let first = try XCTUnwrap(summary.history.first?.metric("dice_mean"))
        XCTAssertGreaterThan(summary.bestScore, 0.85, "best validation Dice \(summary.bestScore)")
        XCTAssertGreaterThan(summary.bestScore, first)
        XCTAssertLessThan(summary.history.last!.loss, summary.history.first!.loss)
        for file in ["config.yaml", "metrics.jsonl", "best.safetensors", "last.safetensors", "curves.png", "overlay.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: tempDir + "/run/" + file), file)
        }
        // The saved config is the resolved one and loads back to the same config.
        XCTAssertEqual(try RunConfig.load(tempDir + "/run/config.yaml"), config)
        let lines = try String(contentsOfFile: tempDir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 8)
        let record = try XCTUnwrap(EpochRecord(json: String(lines[7])))
        XCTAssertEqual(record.terms.map(\.name), ["dice_ce", "boundary"])
        XCTAssertEqual(record.scalars.map(\.name), ["alpha"])
        XCTAssertEqual(record.scalars[0].value, 0.08, accuracy: 1e-12)
        XCTAssertEqual(record.weights.map(\.value)[1], 0.08, accuracy: 1e-12)  // α0 + 7·Δ
        XCTAssertNotNil(record.metric("hd95.2"))
    }

    /// Resuming restores weights, optimiser state, epoch, generator and data order exactly, bit
    /// for bit, on two threads: every kernel assigns its work to workers statically (the
    /// convolution weight gradient sums tile t on worker t mod workers), so two runs with the
    /// same thread count compute the same floats.
    func testResumeContinuesTheSameLossCurveOnTwoThreads() throws {
        let saved = Parallel.threads
        Parallel.threads = 2
        defer { Parallel.threads = saved }
        let config = try phantomConfig(epochs: 4, steps: 6)
        _ = try TrainingRun.run(.segmentation(config), output: tempDir + "/straight", progress: quiet())
        let first = try TrainingRun.run(.segmentation(config), output: tempDir + "/resumed", stopAfterEpoch: 2, progress: quiet())
        XCTAssertEqual(first.epochs, 2)
        let resumed = try TrainingRun.run(
            .segmentation(config), output: tempDir + "/resumed", resume: tempDir + "/resumed/last.safetensors", progress: quiet())
        XCTAssertEqual(resumed.epochs, 4)
        // metrics.jsonl: the same lines apart from the wall time.
        func lines(_ run: String) throws -> [String] {
            try String(contentsOfFile: tempDir + "/\(run)/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
                $0.components(separatedBy: ", \"seconds\"")[0]
            }
        }
        let a = try lines("straight"), b = try lines("resumed")
        XCTAssertEqual(a.count, 4)
        XCTAssertEqual(a, b)
        // Same final weights and optimiser state, bit for bit.
        let ca = try Checkpoint.read(tempDir + "/straight/last.safetensors")
        let cb = try Checkpoint.read(tempDir + "/resumed/last.safetensors")
        XCTAssertEqual(ca.epoch, 4)
        XCTAssertEqual(ca.rngState, cb.rngState)
        XCTAssertEqual(Set(ca.model.keys), Set(cb.model.keys))
        XCTAssertEqual(Set(ca.optimizer.keys), Set(cb.optimizer.keys))
        for (name, t) in ca.model.sorted(by: { $0.key < $1.key }) {
            let d = zip(t.scalars, cb.model[name]!.scalars).map { abs($0 - $1) }.max() ?? 0
            XCTAssertEqual(d, 0, "model.\(name)")
        }
        for (name, t) in ca.optimizer.sorted(by: { $0.key < $1.key }) {
            let d = zip(t.scalars, cb.optimizer[name]!.scalars).map { abs($0 - $1) }.max() ?? 0
            XCTAssertEqual(d, 0, "optimizer.\(name)")
        }
    }

    func testResumingWithAnotherConfigIsRefused() throws {
        let config = try phantomConfig(epochs: 2, steps: 2)
        _ = try TrainingRun.run(.segmentation(config), output: tempDir + "/run", stopAfterEpoch: 1, progress: quiet())
        var other = config
        other.training.optimizer.lr = 0.1
        XCTAssertThrowsError(try TrainingRun.run(
            .segmentation(other), output: tempDir + "/run", resume: tempDir + "/run/last.safetensors", progress: quiet())) { error in
            XCTAssertEqual("\(error)", "\(tempDir)/run/last.safetensors: was trained with a different config; resume with the config saved in it")
        }
    }

    func testCheckpointRoundTripsWeightsStateAndMetadata() throws {
        let config = try phantomConfig(epochs: 1)
        let net = makeUNet(config)
        var rng = RandomGenerator(seed: 5)
        _ = rng.next()
        let optimizerState = [("down.0.conv.weight.exp_avg", Tensor.randomNormal([8, 1, 3, 3], using: &rng))]
        var ckpt = Checkpoint(
            config: config, epoch: 7, rngState: rng.stateWords, bestScore: 0.875, bestEpoch: 5, staleValidations: 2,
            model: net.stateDictionary(), optimizer: optimizerState)
        ckpt.extraMetadata = ["registration": "window: 9", "epoch": "ignored: reserved"]
        let path = tempDir + "/c.safetensors"
        try ckpt.write(to: path)
        let back = try Checkpoint.read(path)
        XCTAssertEqual(back.config, config)
        XCTAssertEqual(back.epoch, 7)
        XCTAssertEqual(back.rngState, rng.stateWords)
        XCTAssertEqual(back.bestScore, 0.875)
        XCTAssertEqual(back.bestEpoch, 5)
        XCTAssertEqual(back.staleValidations, 2)
        XCTAssertEqual(back.extraMetadata, ["registration": "window: 9"])
        for (name, t) in net.stateDictionary() {
            XCTAssertEqual(back.model[name]?.shape, t.shape, name)
            XCTAssertEqual(back.model[name]?.scalars, t.scalars, name)
        }
        XCTAssertEqual(back.optimizer["down.0.conv.weight.exp_avg"]?.scalars, optimizerState[0].1.scalars)
        // Loading into a fresh network of the same architecture restores it.
        var other = config
        other.training.seed = 99
        let fresh = makeUNet(other)
        XCTAssertNotEqual(fresh.stateDictionary()[0].1.scalars, net.stateDictionary()[0].1.scalars)
        try back.load(into: fresh, path: path)
        XCTAssertEqual(fresh.stateDictionary()[0].1.scalars, net.stateDictionary()[0].1.scalars)
        // The file is plain safetensors: 8-byte header length, JSON with string metadata.
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let n = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as! [String: Any]
        let meta = header["__metadata__"] as! [String: String]
        XCTAssertEqual(meta["format"], "morphoseg-checkpoint")
        XCTAssertEqual(meta["epoch"], "7")
        XCTAssertNotNil(header["model.down.0.conv.weight"])
    }

    func testCheckpointOfAnotherArchitectureIsRefusedNamingTheParameter() throws {
        let config = try phantomConfig(epochs: 1)
        let ckpt = Checkpoint(
            config: config, epoch: 1, rngState: [1, 2, 3, 4], bestScore: 0, bestEpoch: 1, staleValidations: 0,
            model: makeUNet(config).stateDictionary(), optimizer: [])
        var wider = config
        wider.model.unet.channels = [8, 16, 64]
        XCTAssertThrowsError(try ckpt.load(into: makeUNet(wider), path: "x.safetensors")) { error in
            XCTAssertTrue("\(error)".hasPrefix("x.safetensors: parameter '"), "\(error)")
        }
        XCTAssertThrowsError(try Checkpoint.read(tempDir + "/none.safetensors")) { error in
            XCTAssertEqual("\(error)", "\(tempDir)/none.safetensors: no such file")
        }
    }

    // MARK: The trainer is generic: a toy task

    /// y = w·x fitted to y = 3x; the loss turns NaN from `nanFromEpoch` on.
    final class LineTask: TrainingTask {
        final class Line: Module {
            let w = Parameter(Tensor(shape: [1], data: [0]))
            var localParameters: [(String, Parameter)] { [("w", w)] }
        }
        let line = Line()
        let nanFromEpoch: Int
        var model: any Module { line }
        var scoreName: String { "fit" }
        var checkpointMetadata: [String: String] { ["toy": "line"] }
        init(nanFromEpoch: Int) { self.nanFromEpoch = nanFromEpoch }

        var makeBatch: @Sendable (UInt64, Int) -> Tensor {
            { seed, step in
                var rng = SeedStream.generator(seed: seed, step)
                return Tensor.randomUniform([8], low: -1, high: 1, using: &rng)
            }
        }

        func loss(_ x: Tensor, epoch: Int) -> WeightedLossValue {
            let w = line.w.value, poisoned = epoch >= nanFromEpoch
            let mse = try! WeightedLoss([LossTerm<Tensor>("mse") { x in
                let residual = x * w - x * 3
                let l = (residual * residual).mean()
                return poisoned ? l * Float.nan : l
            }])
            return mse(x, epoch: epoch)
        }

        func validate() throws -> [(name: String, value: Double)] { [("fit", -abs(Double(line.w.value.item) - 3))] }
        func drawOverlay(to path: String) throws {}
    }

    func lineConfig(epochs: Int, patience: Int = 0) throws -> RunConfig {
        try RunConfig(yaml: """
            data: {phantom: {}}
            training:
              epochs: \(epochs)
              steps_per_epoch: 20
              optimizer: {kind: sgd, lr: 0.5, momentum: 0}
              lr_schedule: {kind: constant}
              early_stopping: {patience: \(patience)}
            output: {plots: false}
            """)
    }

    func testGenericTrainerFitsAToyTask() throws {
        let task = LineTask(nanFromEpoch: 100)
        let trainer = try Trainer(task: task, config: try lineConfig(epochs: 3), options: TrainerOptions(outputDirectory: tempDir, progress: quiet()))
        let summary = try trainer.run()
        XCTAssertEqual(Double(task.line.w.value.item), 3, accuracy: 1e-3)
        XCTAssertEqual(summary.bestEpoch, 3)
    }

    func testNonFiniteLossStopsTrainingAndKeepsTheLastGoodCheckpoint() throws {
        let task = LineTask(nanFromEpoch: 2)
        let trainer = try Trainer(task: task, config: try lineConfig(epochs: 5), options: TrainerOptions(outputDirectory: tempDir, progress: quiet()))
        XCTAssertThrowsError(try trainer.run()) { error in
            XCTAssertEqual(error as? MorphoTrainError, .nonFiniteLoss(epoch: 3, step: 1, terms: "mse nan"))
            XCTAssertTrue("\(error)".hasPrefix("training stopped: the loss is not finite at epoch 3, step 1"), "\(error)")
        }
        let last = try Checkpoint.read(tempDir + "/last.safetensors")
        XCTAssertEqual(last.epoch, 2)
        XCTAssertEqual(last.extraMetadata, ["toy": "line"])
        XCTAssertTrue(last.model["w"]!.scalars[0].isFinite)
        let lines = try String(contentsOfFile: tempDir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
    }

    func testEarlyStoppingAfterPatienceValidationsWithoutImprovement() throws {
        // With lr 0.5 the fit converges within the first epoch; later epochs cannot improve much,
        // but to be sure the score stalls, freeze learning from epoch 1 on with lr 0 via a step schedule.
        var config = try lineConfig(epochs: 10, patience: 2)
        config.training.lrSchedule.kind = .step
        config.training.lrSchedule.stepSize = 1
        config.training.lrSchedule.gamma = 0
        let task = LineTask(nanFromEpoch: 100)
        let summary = try Trainer(task: task, config: config, options: TrainerOptions(outputDirectory: tempDir, progress: quiet())).run()
        XCTAssertTrue(summary.stoppedEarly)
        XCTAssertEqual(summary.epochs, 3)
        XCTAssertEqual(summary.bestEpoch, 1)
    }

    // MARK: Inference and evaluation

    func testSegmentWritesLabelsWithTheInputGeometry() throws {
        let config = try phantomConfig(epochs: 4, steps: 12)
        _ = try TrainingRun.run(.segmentation(config), output: tempDir + "/run", progress: quiet())
        guard case .phantom(var p) = config.data.source else { return XCTFail() }
        p.spacing = [0.8, 0.8, 1]
        let (image, label) = Phantom.make(p, index: 50)
        try NIfTI.write(image, to: tempDir + "/in.nii.gz")
        try NIfTI.write(label, to: tempDir + "/ref.nii.gz", datatype: .uint8, like: image)
        let segmenter = try Segmenter(checkpoint: tempDir + "/run/best.safetensors")
        try segmenter.segmentFiles(inputs: [tempDir + "/in.nii.gz"], output: tempDir + "/out.nii.gz", probabilities: tempDir + "/p.nii.gz")
        let out = try NIfTI.read(tempDir + "/out.nii.gz")
        XCTAssertTrue(out.sameGrid(as: image))
        XCTAssertEqual(try NIfTI.readHeader(tempDir + "/out.nii.gz").datatype, .uint8)
        let probs = try NIfTI.read(tempDir + "/p.nii.gz")
        XCTAssertEqual(probs.channels, 3)
        for i in stride(from: 0, to: probs.spatialCount, by: 97) {
            let s = (0..<3).reduce(Float(0)) { $0 + probs.data[$1 * probs.spatialCount + i] }
            XCTAssertEqual(s, 1, accuracy: 1e-4)
        }
        let e = try Evaluation.files(prediction: tempDir + "/out.nii.gz", reference: tempDir + "/ref.nii.gz")
        XCTAssertEqual(e.labels.map(\.label), [1, 2])
        XCTAssertGreaterThan(e.meanDice, 0.7)
    }

    /// 3D patches, anisotropic phantom voxels resampled to a 1.5 mm grid, sliding windows over
    /// whole volumes, and the segmentation mapped back to the file's grid.
    func testThreeDimensionalRunWithResamplingSegmentsOnTheInputGrid() throws {
        let config = try RunConfig(yaml: """
            name: tiny3d
            model:
              unet: {dims: 3, channels: [4, 8], classes: 3}
            data:
              phantom: {size: [24, 24, 12], spacing: [1, 1, 2], count: 5, seed: 4}
              spacing: [1.5, 1.5, 1.5]
              patch: {size: [16, 16, 16], foreground: 0.7}
            training:
              epochs: 2
              steps_per_epoch: 4
              batch_size: 2
              optimizer: {lr: 0.01}
            inference: {overlap: 0.25}
            """)
        let summary = try TrainingRun.run(.segmentation(config), output: tempDir + "/run", progress: quiet())
        XCTAssertEqual(summary.epochs, 2)
        XCTAssertNotNil(summary.history.last?.metric("hd95.1"))
        guard case .phantom(let p) = config.data.source else { return XCTFail() }
        let (image, _) = Phantom.make(p, index: 9)
        try NIfTI.write(image, to: tempDir + "/in.nii.gz")
        try Segmenter(checkpoint: tempDir + "/run/last.safetensors")
            .segmentFiles(inputs: [tempDir + "/in.nii.gz"], output: tempDir + "/out.nii.gz", probabilities: tempDir + "/p.nii.gz")
        let out = try NIfTI.read(tempDir + "/out.nii.gz")
        XCTAssertEqual(out.spatialShape, [12, 24, 24])
        XCTAssertTrue(out.sameGrid(as: image))
        XCTAssertTrue(out.data.allSatisfy { $0 >= 0 && $0 < 3 && $0 == $0.rounded() })
        // Probabilities resampled back to 1 × 1 × 2 mm still sum to 1, borders included.
        let probs = try NIfTI.read(tempDir + "/p.nii.gz")
        let n = probs.spatialCount
        for i in 0..<n {
            let sum = probs.data[i] + probs.data[n + i] + probs.data[2 * n + i]
            XCTAssertEqual(sum, 1, accuracy: 1e-4)
        }
    }

    func testPhysicalRegularizationTermIsTrainedAndLogged() throws {
        let config = try phantomConfig(epochs: 2, steps: 3, loss: "{regional: dice, prl: {weight: 0.5}}")
        let summary = try TrainingRun.run(.segmentation(config), output: tempDir + "/run", progress: quiet())
        let record = try XCTUnwrap(summary.history.last)
        XCTAssertEqual(record.terms.map(\.name), ["dice", "boundary", "prl"])
        XCTAssertEqual(record.weights.map(\.value)[2], 0.5)
        XCTAssertTrue(record.terms[2].value.isFinite && record.terms[2].value > 0)
    }

    func testPhysicalRegularizationTargetFluxesComeWithTheBatchAndGiveTheSameTerm() throws {
        let config = try phantomConfig(epochs: 1, steps: 1, loss: "{regional: dice, prl: {weight: 0.5}}")
        let task = try SegmentationTask(config: config)
        var batch = task.makeBatch(3, 0)
        let fluxes = try XCTUnwrap(batch.prlTargetFluxes)
        XCTAssertEqual(fluxes.count, config.loss.idc.count)
        let fromBatch = task.loss(batch, epoch: 0)["prl"]!.value
        batch.prlTargetFluxes = nil
        let fromLabels = task.loss(batch, epoch: 0)["prl"]!.value
        XCTAssertEqual(fromBatch, fromLabels, accuracy: 1e-6 * max(1, abs(fromLabels)))
    }

    func testSegmentRefusesTheWrongNumberOfModalities() throws {
        let config = try phantomConfig(epochs: 1, steps: 1)
        _ = try TrainingRun.run(.segmentation(config), output: tempDir + "/run", progress: quiet())
        let segmenter = try Segmenter(checkpoint: tempDir + "/run/last.safetensors")
        let v = Volume(depth: 1, height: 8, width: 8, data: [Float](repeating: 0, count: 64))
        XCTAssertThrowsError(try segmenter.segment([v, v], paths: ["a.nii", "b.nii"])) { error in
            XCTAssertEqual("\(error)", "a.nii: the model takes 1 image(s) (image), got 2")
        }
    }

    func testEvaluationRefusesMismatchedGrids() throws {
        let a = Volume(depth: 2, height: 4, width: 4, data: [Float](repeating: 1, count: 32))
        let b = Volume(depth: 2, height: 4, width: 5, data: [Float](repeating: 1, count: 40))
        try NIfTI.write(a, to: tempDir + "/a.nii", datatype: .uint8)
        try NIfTI.write(b, to: tempDir + "/b.nii", datatype: .uint8)
        XCTAssertThrowsError(try Evaluation.files(prediction: tempDir + "/a.nii", reference: tempDir + "/b.nii")) { error in
            XCTAssertEqual("\(error)", "\(tempDir)/a.nii and \(tempDir)/b.nii are not on the same voxel grid: sizes (x, y, z) [4, 4, 2] vs [5, 4, 2]")
        }
    }

    func testEvaluationJSONHasNullForInfiniteDistances() throws {
        var p = [Float](repeating: 0, count: 32), r = p
        p[3] = 1
        r[3] = 1
        r[20] = 2
        try NIfTI.write(Volume(depth: 2, height: 4, width: 4, data: p), to: tempDir + "/p.nii", datatype: .uint8)
        try NIfTI.write(Volume(depth: 2, height: 4, width: 4, data: r), to: tempDir + "/r.nii", datatype: .uint8)
        let e = try Evaluation.files(prediction: tempDir + "/p.nii", reference: tempDir + "/r.nii")
        let object = try JSONSerialization.jsonObject(with: Data(e.json.utf8)) as! [String: Any]
        let labels = object["labels"] as! [[String: Any]]
        XCTAssertEqual(labels.count, 2)
        XCTAssertEqual(labels[0]["dice"] as? Double, 1)
        XCTAssertTrue(labels[1]["hd95"] is NSNull)
        XCTAssertEqual(object["mean_dice"] as? Double, 0.5)
    }

    func testDemoConfigIsTheEmbeddedDefault() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Configs/demo-seg.yaml").path
        let file = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertEqual(file.trimmingCharacters(in: .whitespacesAndNewlines), Demo.configYAML.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
