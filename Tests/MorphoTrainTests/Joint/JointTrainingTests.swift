import Foundation
import MorphoIO
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

final class JointTrainingTests: XCTestCase, TinyJointRun {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("joint")
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
}
