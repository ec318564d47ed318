import Foundation
import MorphoIO
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain

final class JointTrainingTests: XCTestCase {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = NSTemporaryDirectory() + "joint-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tempDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: tempDir)
    }

    /// A small 2D phantom joint run: 32×32 phantoms, 10 images (8 training), random pairs.
    func config(
        strategy: String = "joint", labelled: Int? = nil, epochs: Int = 6, steps: Int = 8, prl: Double = 0.1, extra: String = ""
    ) throws -> JointRunConfig {
        try JointRunConfig(yaml: """
            name: tiny-joint
            model:
              kind: joint
              unet: {dims: 2, channels: [8, 16], strides: [2], classes: 3}
            data:
              phantom: {size: [32, 32], count: 10, noise: 0.05, bias: 0.1, seed: 3}
              validation: {fraction: 0.2}
              normalization: {kind: percentile}
              threads: 1
            loss:
              regional: dice_ce
              prl: {weight: \(prl), K: 0.5}
              schedule: {kind: rebalance, alpha0: 0.1, delta: 0.05, floor: 0.1, cap: 0.5}
            registration:
              pairs: random
              validation_pairs: 2
              network: {encoder: [8, 16, 16], decoder: [16, 16, 16, 8]}
              loss:
                similarity: {kind: lcc, window: 5, weight: 1}
                smoothness: {kind: grad_l2, weight: 0.5}
            joint:
              strategy: \(strategy)
              alternate_steps: 2
              \(labelled.map { "labelled_images: \($0)" } ?? "")
              coupling: {weight: 0.5}
            training:
              epochs: \(epochs)
              steps_per_epoch: \(steps)
              batch_size: 2
              optimizer: {kind: adam, lr: 0.003}
              lr_schedule: {kind: constant}
              validate_every: 1
            \(extra)
            """, file: "tiny-joint.yaml")
    }

    func quiet() -> ProgressReporter { ProgressReporter(style: .quiet) }

    /// Sum of |grad| over the parameters of `module` (0 when none has a gradient).
    func gradientMass(_ module: any Module) -> Double {
        module.parameters.reduce(0.0) { acc, p in acc + (p.grad.map { Double($0.abs().sum().item) } ?? 0) }
    }

    func testOneJointStepSendsGradientsIntoBothNetworks() throws {
        let task = try JointTask(config: config())
        let batch = task.makeBatch(7, 0)
        XCTAssertEqual(batch.phase, .both)
        let value = task.loss(batch, epoch: 0)
        XCTAssertEqual(value.terms.map(\.name), ["lcc", "grad_l2", "dice_ce", "boundary", "prl", "coupling"])
        XCTAssertTrue(value.terms.allSatisfy { $0.value.isFinite })
        value.total.backward()
        XCTAssertGreaterThan(gradientMass(task.network.segmentation), 0)
        XCTAssertGreaterThan(gradientMass(task.network.registration), 0)
    }

    /// The PRL term reads the labelled images' target fluxes from the batch (computed once per
    /// labelled image): it equals PRL against the label maps themselves.
    func testPRLTermFromTheBatchsTargetFluxesEqualsPRLOfTheLabelMaps() throws {
        let task = try JointTask(config: config())
        let batch = task.makeBatch(7, 0)
        let flags = batch.movingLabelled + batch.fixedLabelled
        let labelled = flags.indices.filter { flags[$0] }
        XCTAssertFalse(labelled.isEmpty)
        let (term, expected) = withoutGradients {
            let term = task.loss(batch, epoch: 0)["prl"]!.value
            let probs = task.network.segmentation(batch.images).softmax()
            let prediction = 1 - JointTask.rows(probs, labelled).slice(axis: 1, 0..<1)
            let labels = JointTask.rows(Tensor.concat([batch.movingLabels, batch.fixedLabels], axis: 0), labelled)
            let target = 1 - oneHot(labels, class: 0)
            return (term, Double(PhysicalRegularizationLoss(K: 0.5)(prediction: prediction, target: target).item))
        }
        XCTAssertGreaterThan(expected, 0)
        XCTAssertEqual(Double(term), expected, accuracy: 1e-5 * expected)
    }

    /// With both images labelled, the coupling term (its warp shared with the image's) is the Dice
    /// of the warped one-hot moving labels and the fixed ones: registration's semi-supervised Dice.
    func testCouplingTermOfLabelledPairsIsTheDiceOfTheWarpedOneHotLabels() throws {
        let task = try JointTask(config: config())
        let batch = task.makeBatch(5, 0)
        XCTAssertEqual(batch.movingLabelled + batch.fixedLabelled, [true, true, true, true])
        let (term, expected) = withoutGradients {
            let term = task.loss(batch, epoch: 0)["coupling"]!.value
            let flow = task.network.registration(moving: batch.moving, fixed: batch.fixed)
            let warped = warp(foregroundOneHot(batch.movingLabels, classes: 3), flow)
            return (term, ProbabilityDiceLoss(smooth: 1e-5)(warped, foregroundOneHot(batch.fixedLabels, classes: 3)).item)
        }
        XCTAssertGreaterThan(expected, 0)
        XCTAssertEqual(term, expected, accuracy: 1e-5)
    }

    func testCouplingTermAloneReachesBothNetworks() throws {
        // Only the coupling term weighted: both networks still get gradients (through the warp of
        // the moving segmentation and through the U-Net's predictions on unlabelled images).
        let c = try config(labelled: 0, prl: 0, extra: "")
        var joint = c
        joint.registration.similarityWeight = WeightConfig(0)
        joint.registration.smoothnessWeight = WeightConfig(0)
        let task = try JointTask(config: joint)
        let value = task.loss(task.makeBatch(3, 0), epoch: 0)
        XCTAssertEqual(value["dice_ce"]?.value, 0)  // no labelled image
        XCTAssertGreaterThan(try XCTUnwrap(value["coupling"]).value, 0)
        value.total.backward()
        XCTAssertGreaterThan(gradientMass(task.network.segmentation), 0)
        XCTAssertGreaterThan(gradientMass(task.network.registration), 0)
    }

    func testAlternatingPhasesTrainOneNetworkAtATime() throws {
        let task = try JointTask(config: config(strategy: "alternating"))
        let phases = (0..<6).map { task.makeBatch(1, $0).phase }
        XCTAssertEqual(phases, [.registration, .registration, .segmentation, .segmentation, .registration, .registration])
        let reg = task.loss(task.makeBatch(1, 0), epoch: 0)
        reg.total.backward()
        XCTAssertGreaterThan(gradientMass(task.network.registration), 0)
        XCTAssertEqual(gradientMass(task.network.segmentation), 0)
        task.network.zeroGrad()
        let seg = task.loss(task.makeBatch(1, 2), epoch: 0)
        seg.total.backward()
        XCTAssertGreaterThan(gradientMass(task.network.segmentation), 0)
        XCTAssertEqual(gradientMass(task.network.registration), 0)
        // The same terms are reported in both phases.
        XCTAssertEqual(reg.terms.map(\.name), seg.terms.map(\.name))
    }

    func testPartialLabelsKeepOnlyTheFirstImagesLabelled() throws {
        let task = try JointTask(config: config(labelled: 2))
        XCTAssertEqual(task.dataset.images.count, 8)
        XCTAssertEqual(task.dataset.images.filter { $0.labels != nil }.count, 2)
        XCTAssertEqual(task.distanceCache.count, 2)
        // Over many batches both labelled and unlabelled images appear; every loss is finite and
        // the segmentation terms are 0 exactly when no image of the batch is labelled.
        var sawUnlabelled = false, sawLabelled = false
        for step in 0..<12 {
            let b = task.makeBatch(11, step)
            let flags = b.movingLabelled + b.fixedLabelled
            sawUnlabelled = sawUnlabelled || flags.contains(false)
            sawLabelled = sawLabelled || flags.contains(true)
            let v = withoutGradients { task.loss(b, epoch: 0) }
            XCTAssertTrue(v.terms.allSatisfy { $0.value.isFinite }, "\(v.terms)")
            XCTAssertEqual(v["dice_ce"]!.value == 0, !flags.contains(true))
        }
        XCTAssertTrue(sawUnlabelled && sawLabelled)
    }

    func testBatchStacksImagesOneHotsAndLabelledTargetsInMovingThenFixedOrder() throws {
        let task = try JointTask(config: config(labelled: 3))
        var checked = 0
        for step in 0..<12 {
            let b = task.makeBatch(17, step)
            // The U-Net's input and the coupling's one-hot sides come with the batch.
            XCTAssertEqual(b.images.scalars, Tensor.concat([b.moving, b.fixed], axis: 0).scalars)
            XCTAssertEqual(b.movingForeground.scalars, foregroundOneHot(b.movingLabels, classes: 3).scalars)
            XCTAssertEqual(b.fixedForeground.shape, [2, 2, 32, 32])
            XCTAssertEqual(b.fixedForeground.scalars, foregroundOneHot(b.fixedLabels, classes: 3).scalars)
            let rows = b.labelledRows
            XCTAssertEqual(rows, (b.movingLabelled + b.fixedLabelled).indices.filter { (b.movingLabelled + b.fixedLabelled)[$0] })
            guard !rows.isEmpty else {
                XCTAssertEqual(b.labelledLabels.shape, [], "no labelled image: a scalar 0")
                continue
            }
            let all = Tensor.concat([b.movingLabels, b.fixedLabels], axis: 0)
            let voxels = all.spatialCount
            XCTAssertEqual(b.labelledLabels.shape, [rows.count, 1, 32, 32])
            XCTAssertEqual(b.labelledDistances.shape, [rows.count, 3, 32, 32])
            XCTAssertEqual(b.labelledFluxes.divI.shape, [rows.count, 1, 32, 32])
            XCTAssertEqual(b.labelledFluxes.divJ.shape, [rows.count, 1, 32, 32])
            for (j, r) in rows.enumerated() {
                let labels = Array(all.scalars[(r * voxels)..<((r + 1) * voxels)])
                XCTAssertEqual(Array(b.labelledLabels.scalars[(j * voxels)..<((j + 1) * voxels)]), labels)
                // The image this row came from, by its label map: its cached distance maps and fluxes.
                let image = try XCTUnwrap(task.dataset.images.first { $0.labels?.data == labels })
                XCTAssertEqual(Array(b.labelledDistances.scalars[(j * 3 * voxels)..<((j + 1) * 3 * voxels)]), task.distanceCache[image.id]!.data)
                let fluxes = task.fluxCache[image.id]!
                XCTAssertEqual(Array(b.labelledFluxes.divI.scalars[(j * voxels)..<((j + 1) * voxels)]), Array(fluxes[..<voxels]))
                XCTAssertEqual(Array(b.labelledFluxes.divJ.scalars[(j * voxels)..<((j + 1) * voxels)]), Array(fluxes[voxels...]))
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 4)
    }

    func testShardsOfABatchAreItsPairsAndCountTheWholeBatchsLabelledImages() throws {
        let task = try JointTask(config: config(labelled: 3))
        for step in 0..<6 {
            let whole = task.makeBatch(13, step)
            XCTAssertEqual(whole.globalPairs, 2)
            XCTAssertEqual(whole.globalLabelled, whole.labelledCount)
            let shards = [[0], [1]].map { task.makeShard!(13, step, $0) }
            for (k, shard) in shards.enumerated() {
                XCTAssertEqual(shard.moving.scalars, whole.moving.slice(axis: 0, k..<(k + 1)).scalars)
                XCTAssertEqual(shard.fixed.scalars, whole.fixed.slice(axis: 0, k..<(k + 1)).scalars)
                XCTAssertEqual(shard.movingLabelled + shard.fixedLabelled, [whole.movingLabelled[k], whole.fixedLabelled[k]])
                XCTAssertEqual(shard.globalPairs, 2)
                XCTAssertEqual(shard.globalLabelled, whole.labelledCount, "each shard knows the whole batch's labelled images")
            }
        }
    }

    func runAndCheckDecrease(strategy: String) throws -> TrainingSummary {
        let c = try config(strategy: strategy, labelled: 4, epochs: 6, steps: 8)
        let summary = try TrainingRun.run(.joint(c), output: tempDir + "/\(strategy)", progress: quiet())
        XCTAssertEqual(summary.epochs, 6)
        let first = summary.history.first!, last = summary.history.last!
        print("\(strategy): loss \(first.loss) → \(last.loss); " + last.terms.map { term in "\(term.name) \(first.terms.first { $0.name == term.name }!.value) → \(term.value)" }.joined(separator: ", ")
            + "; dice_mean \(first.metric("dice_mean") ?? .nan) → \(last.metric("dice_mean") ?? .nan)")
        XCTAssertLessThan(last.loss, first.loss)
        for name in ["lcc", "dice_ce", "coupling"] {
            let a = first.terms.first { $0.name == name }!.value, b = last.terms.first { $0.name == name }!.value
            XCTAssertLessThan(b, a, name)
        }
        XCTAssertEqual(last.scalars.map(\.name), ["alpha"])
        XCTAssertEqual(last.scalars[0].value, 0.35, accuracy: 1e-12)  // 0.1 + 5·0.05
        XCTAssertEqual(last.weights.first { $0.name == "dice_ce" }!.value, 0.65, accuracy: 1e-12)
        for key in ["seg_dice_mean", "seg_dice.1", "reg_dice_mean", "reg_dice.2", "reg_dice_before", "folding_percent"] {
            XCTAssertNotNil(last.metric(key), key)
        }
        for file in ["joint.yaml", "metrics.jsonl", "best.safetensors", "last.safetensors", "curves.png", "overlay.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: tempDir + "/\(strategy)/" + file), file)
        }
        return summary
    }

    func testShortFullyJointRunDecreasesItsLosses() throws {
        _ = try runAndCheckDecrease(strategy: "joint")
    }

    func testShortAlternatingRunDecreasesItsLosses() throws {
        _ = try runAndCheckDecrease(strategy: "alternating")
    }

    func testJointCheckpointIsUsableBySegmentAndRegisterLoaders() throws {
        let c = try config(labelled: 3, epochs: 2, steps: 3)
        let dir = tempDir + "/ckpt"
        _ = try TrainingRun.run(.joint(c), output: dir, progress: quiet())
        let path = dir + "/best.safetensors"
        let task = try JointTask(config: c)
        try Checkpoint.read(path).load(into: task.network, path: path)

        // Segmenter: the U-Net of the checkpoint, same output as the joint model's U-Net, with
        // inputs padded as in joint training (the displacement network's multiple).
        let segmenter = try Segmenter(checkpoint: path)
        XCTAssertGreaterThan(c.registration.network.sizeMultiple, c.run.model.unet.sizeMultiple, "the check below must tell them apart")
        XCTAssertEqual(segmenter.preprocessor.multiple, c.registration.network.sizeMultiple)
        var g = RandomGenerator(seed: 5)
        let x = Tensor.randomNormal([1, 1, 32, 32], std: 1, using: &g)
        let a = withoutGradients { segmenter.network(x) }
        task.network.setTraining(false)
        let b = withoutGradients { task.network.segmentation(x) }
        XCTAssertEqual(a.scalars, b.scalars)
        // And it segments a file end to end.
        let (image, label) = Phantom.make(phantom(c), index: 9)
        try NIfTI.write(image, to: tempDir + "/img.nii.gz", datatype: .float32)
        try segmenter.segmentFiles(inputs: [tempDir + "/img.nii.gz"], output: tempDir + "/seg.nii.gz")
        XCTAssertEqual(try NIfTI.read(tempDir + "/seg.nii.gz").data.count, label.data.count)

        // RegistrationModel: the displacement network of the checkpoint.
        let model = try RegistrationModel.load(path)
        let m = Tensor.randomNormal([1, 1, 32, 32], std: 1, using: &g)
        XCTAssertEqual(
            withoutGradients { model.network(moving: m, fixed: x) }.scalars,
            withoutGradients { task.network.registration(moving: m, fixed: x) }.scalars)
        let (fixedImage, fixedLabel) = Phantom.make(phantom(c), index: 8)
        let pair = try RegistrationPair(
            fixed: fixedImage, moving: image, fixedLabels: fixedLabel, movingLabels: label,
            files: RegistrationPairFiles(fixed: "f", moving: "m"))
        XCTAssertEqual(try model.predict(pair).shape, [1, 2, 32, 32])

        // Resuming the joint run from its checkpoint continues where it stopped.
        let more = try TrainingRun.start(
            configPath: nil, output: dir, resume: false, resumeFrom: dir + "/last.safetensors", stopAfterEpoch: nil)
        XCTAssertEqual(more.summary.epochs, 2)
        XCTAssertEqual(try JointRunConfig.load(checkpoint: path), c)
    }

    func testResumedJointRunMatchesAnUninterruptedOne() throws {
        let saved = Parallel.threads
        Parallel.threads = 1
        defer { Parallel.threads = saved }
        let c = try config(labelled: 3, epochs: 3, steps: 3)
        let full = try TrainingRun.run(.joint(c), output: tempDir + "/full", progress: quiet())
        _ = try TrainingRun.run(.joint(c), output: tempDir + "/cut", stopAfterEpoch: 1, progress: quiet())
        let resumed = try TrainingRun.run(.joint(c), output: tempDir + "/cut", resume: tempDir + "/cut/last.safetensors", progress: quiet())
        XCTAssertEqual(resumed.history.map(\.loss), full.history.map(\.loss))
    }

    func phantom(_ c: JointRunConfig) -> PhantomConfig {
        guard case .phantom(let p) = c.run.data.source else { fatalError("phantom config expected") }
        return p
    }

    func testNonFiniteLossStopsTheJointRunAndKeepsTheLastGoodCheckpoint() throws {
        let c = try config(labelled: 2, epochs: 3, steps: 2)
        var dataset = try RegistrationDataset.load(c.registrationRun)
        let task = try JointTask(config: c, dataset: dataset)
        // Epoch 1 trains normally; then every training image turns non-finite.
        let trainer = try Trainer(task: task, config: c.run, options: TrainerOptions(outputDirectory: tempDir + "/nan", stopAfterEpoch: 1, progress: quiet()))
        _ = try trainer.run()
        for i in dataset.images.indices { dataset.images[i].image.data = dataset.images[i].image.data.map { _ in .nan } }
        let poisoned = try JointTask(config: c, dataset: dataset)
        let again = try Trainer(task: poisoned, config: c.run, options: TrainerOptions(
            outputDirectory: tempDir + "/nan", resumeFrom: tempDir + "/nan/last.safetensors", progress: quiet()))
        XCTAssertThrowsError(try again.run()) { error in
            guard case MorphoTrainError.nonFiniteLoss(let epoch, let step, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(epoch, 2)
            XCTAssertEqual(step, 1)
        }
        XCTAssertEqual(try Checkpoint.read(tempDir + "/nan/last.safetensors").epoch, 1)
    }

    func testConfigRejectsTheRegistrationDiceTermAndOtherKinds() throws {
        let segmentationKind = try config().yaml.replacingOccurrences(of: "kind: joint", with: "kind: segmentation")
        XCTAssertThrowsError(try JointRunConfig(yaml: segmentationKind)) { error in
            XCTAssertTrue("\(error)".contains("model.kind"), "\(error)")
        }
        let withDice = try config().yaml.replacingOccurrences(of: "    dice:\n      weight: 0", with: "    dice:\n      weight: 1")
        XCTAssertNotEqual(withDice, try config().yaml)
        XCTAssertThrowsError(try JointRunConfig(yaml: withDice)) { error in
            XCTAssertTrue("\(error)".contains("registration.loss.dice.weight"), "\(error)")
        }
        // The resolved YAML reads back to the same config, and is recognised as joint.
        try config().yaml.write(toFile: tempDir + "/j.yaml", atomically: true, encoding: .utf8)
        XCTAssertTrue(JointRunConfig.declaresJoint(tempDir + "/j.yaml"))
        XCTAssertEqual(try JointRunConfig.load(tempDir + "/j.yaml").yaml, try config().yaml)
    }
}
