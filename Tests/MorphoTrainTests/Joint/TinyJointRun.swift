import Foundation
import MorphoTestSupport
@testable import MorphoTrain

/// Test cases that train the tiny 2D joint run ("tiny-joint", `TinyConfigs.joint`).
protocol TinyJointRun: QuietTraining {}

extension TinyJointRun {
    /// Every image transformed: rotation ±15°, zoom ±15 %, mirrors of x and y, intensity ±10 %
    /// (a YAML flow mapping for `config(augmentation:)`).
    var strong: String { "{flip: [x, y], rotation: 15, scaling: 0.15, intensity: 0.1, probability: 1}" }

    /// A small 2D phantom joint run: 32×32 phantoms, 10 images (8 training), random pairs;
    /// `augmentation` (a YAML flow mapping) becomes `data.augmentation`, `joint` lines are added
    /// to the `joint:` section (indented by the caller's two spaces), `threads` is `data.threads`.
    func config(
        strategy: String = "joint", labelled: Int? = nil, epochs: Int = 6, steps: Int = 8, prl: Double = 0.1, extra: String = "",
        augmentation: String? = nil, joint: String? = nil, threads: Int = 1
    ) throws -> JointRunConfig {
        var yaml = TinyConfigs.joint(
            strategy: strategy, alternateSteps: 2, labelledImages: labelled, prl: prl, epochs: epochs, steps: steps,
            batchSize: 2, optimizer: "{kind: adam, lr: 0.003}", lrSchedule: "{kind: constant}", extra: extra)
        yaml = yaml.replacingOccurrences(
            of: "  threads: 1\n", with: "  threads: \(threads)\n" + (augmentation.map { "  augmentation: \($0)\n" } ?? ""))
        if let joint { yaml = yaml.replacingOccurrences(of: "joint:\n", with: "joint:\n  \(joint)\n") }
        return try JointRunConfig(yaml: yaml, file: "tiny-joint.yaml")
    }
}
