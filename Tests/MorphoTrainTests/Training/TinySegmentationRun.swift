import MorphoTestSupport
@testable import MorphoTrain

/// Test cases that run the trainer without progress output.
protocol QuietTraining {}

extension QuietTraining {
    func quiet() -> ProgressReporter { ProgressReporter(style: .quiet) }
}

/// Test cases that train the tiny 2D phantom segmentation run ("tiny", `TinyConfigs.phantomSegmentation`).
protocol TinySegmentationRun: QuietTraining {}

extension TinySegmentationRun {
    /// A small 2D phantom run (about a second per epoch on 2 cores).
    func phantomConfig(epochs: Int, steps: Int = 10, loss: String = "{regional: dice_ce}", extra: String = "") throws -> RunConfig {
        try RunConfig(
            yaml: TinyConfigs.phantomSegmentation(
                epochs: epochs, steps: steps, threads: 2, loss: loss, optimizer: "{kind: adam, lr: 0.003}", extra: extra))
    }
}
