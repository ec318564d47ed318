import MorphoTestSupport
@testable import MorphoTrain

/// Test cases that train the tiny 2D joint run ("tiny-joint", `TinyConfigs.joint`).
protocol TinyJointRun: QuietTraining {}

extension TinyJointRun {
    /// A small 2D phantom joint run: 32×32 phantoms, 10 images (8 training), random pairs.
    func config(
        strategy: String = "joint", labelled: Int? = nil, epochs: Int = 6, steps: Int = 8, prl: Double = 0.1, extra: String = ""
    ) throws -> JointRunConfig {
        try JointRunConfig(
            yaml: TinyConfigs.joint(
                strategy: strategy, alternateSteps: 2, labelledImages: labelled, prl: prl, epochs: epochs, steps: steps,
                batchSize: 2, optimizer: "{kind: adam, lr: 0.003}", lrSchedule: "{kind: constant}", extra: extra),
            file: "tiny-joint.yaml")
    }
}
