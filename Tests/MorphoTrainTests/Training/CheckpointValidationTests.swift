import Foundation
import MorphoIO
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// A checkpoint is checked against its own metadata and against the network before it is used:
/// these used to load and run (NaN weights segmenting everything as background, a tensor of the
/// right count but another shape, a resume that silently restarted Adam's moments).
final class CheckpointValidationTests: XCTestCase, TinySegmentationRun {
    var tempDir = ""

    override func setUpWithError() throws { tempDir = try temporaryFolder("checkpoint-validation") }

    private func checkpoint(epoch: Int = 1) throws -> (Checkpoint, RunConfig) {
        let config = try phantomConfig(epochs: 2)
        let net = makeUNet(config)
        let ckpt = Checkpoint(
            config: config, epoch: epoch, rngState: [1, 2, 3, 4], bestScore: 0.5, bestEpoch: 1, staleValidations: 0,
            model: net.stateDictionary(), optimizer: [])
        return (ckpt, config)
    }

    /// Rewrites one metadata entry of a valid checkpoint file.
    private func tampered(_ key: String, _ value: String) throws -> String {
        let (ckpt, _) = try checkpoint()
        let path = "\(tempDir)/\(key).safetensors"
        try ckpt.write(to: path)
        var file = try SafeTensors.read(path)
        file.metadata[key] = value
        try SafeTensors.write(file, to: path)
        return path
    }

    func testCheckpointWithNaNWeightsIsRefusedNamingTheTensor() throws {
        var (ckpt, _) = try checkpoint()
        let name = ckpt.model.keys.sorted()[0]
        var values = ckpt.model[name]!.scalars
        values[values.count / 2] = .nan
        ckpt.model[name] = Tensor(shape: ckpt.model[name]!.shape, data: values)
        let path = "\(tempDir)/nan.safetensors"
        try ckpt.write(to: path)
        XCTAssertThrowsError(try Checkpoint.read(path)) { error in
            XCTAssertEqual("\(error)", "\(path): tensor model.\(name) holds 1 NaN or infinite values")
        }
        XCTAssertThrowsError(try Segmenter(checkpoint: path))
    }

    func testMetadataTaskClassesAndChannelsMustAgreeWithTheEmbeddedConfig() throws {
        for (key, value, stated) in [("task", "registration", "segmentation"), ("classes", "7", "3"), ("input_channels", "2", "1")] {
            let path = try tampered(key, value)
            XCTAssertThrowsError(try Checkpoint.read(path)) { error in
                XCTAssertEqual(
                    "\(error)", "\(path): metadata \(key) is \(value) but its config says \(stated); the file was altered or mixed up")
            }
        }
    }

    func testWeightWithTheRightCountButAnotherShapeIsRefused() throws {
        var (ckpt, config) = try checkpoint()
        let (name, t) = try XCTUnwrap(ckpt.model.sorted { $0.key < $1.key }.first { $0.value.shape.count == 4 })
        ckpt.model[name] = Tensor(shape: [t.count], data: t.scalars)
        let path = "\(tempDir)/flat.safetensors"
        try ckpt.write(to: path)
        let stored = try Checkpoint.read(path)
        XCTAssertThrowsError(try stored.load(into: makeUNet(config), path: path)) { error in
            XCTAssertEqual(
                "\(error)", "\(path): tensor model.\(name) has shape [\(t.count)], the network's parameter has \(t.shape)")
        }
    }

    func testResumeFromACheckpointWithoutOptimizerStateIsRefusedUnlessTheOptimizerIsReset() throws {
        let (ckpt, config) = try checkpoint(epoch: 1)
        let path = "\(tempDir)/no-optimizer.safetensors"
        try ckpt.write(to: path)
        XCTAssertThrowsError(
            try TrainingRun.run(.segmentation(config), output: tempDir + "/run", resume: path, progress: quiet())
        ) { error in
            XCTAssertEqual(
                "\(error)",
                "\(path): has no optimizer state, so the run cannot continue exactly; give --reset-optimizer to resume with fresh optimizer moments")
        }
        let summary = try TrainingRun.run(
            .segmentation(config), output: tempDir + "/run", resume: path, resetOptimizer: true, progress: quiet())
        XCTAssertEqual(summary.epochs, 2)
    }
}
