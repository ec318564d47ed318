import Foundation
import MorphoIO
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

final class TrainerTests: XCTestCase, QuietTraining {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("trainer")
    }

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
}
