import Foundation
import MorphoDistributed
import MorphoIO

/// The embedded default run (`morphoseg demo`, `make demo`): phantoms written as NIfTI files,
/// `demo-seg` trained on them through the same manifest path real data takes, a held-out phantom
/// segmented and scored.
public enum Demo {
    /// The text of `Configs/demo-seg.yaml` (a test keeps the two identical).
    public static let configYAML = """
# The embedded default: a 2D U-Net segmenting synthetic phantoms (background, outer blob, inner
# blob). `morphoseg train --config Configs/demo-seg.yaml` generates the phantoms on the fly;
# `morphoseg demo` writes them as NIfTI files first and trains from the manifest.
name: demo-seg
model:
  kind: segmentation
  unet:
    dims: 2
    channels: [8, 16, 32]
    strides: [2, 2]
    norm: instance
    activation: leaky_relu
    classes: 3
data:
  phantom:
    size: [64, 64]
    count: 40
    noise: 0.15
    bias: 0.2
    seed: 1
  validation:
    fraction: 0.2
  normalization:
    kind: zscore
  patch:
    foreground: 0.5
  augmentation:
    flip: [x, y]
    rotation: 10
    scaling: 0.1
    intensity: 0.1
  seed: 0
  threads: 1
loss:
  regional: dice_ce
  boundary:
    enabled: true
  schedule:
    kind: rebalance
    alpha0: 0.01
    delta: 0.01
    floor: 0.1
training:
  epochs: 12
  steps_per_epoch: 20
  batch_size: 8
  optimizer:
    kind: adam
    lr: 0.003
  lr_schedule:
    kind: poly
  grad_clip: 10
  validate_every: 2
  seed: 0
"""

    /// Where the demo put things, and how well it did.
    public struct Result: Sendable {
        public var dataDirectory: String
        public var runDirectory: String
        public var heldOutImage: String
        public var heldOutLabel: String
        public var segmentation: String
        public var probabilities: String
        public var summary: TrainingSummary
        public var heldOut: Evaluation
    }

    /// Runs the demo into `output`: `data/` (phantoms + manifest), `run/` (the training run),
    /// `heldout_seg.nii.gz` and `heldout_prob.nii.gz`.
    public static func run(output: String, progress: ProgressReporter = .automatic()) throws -> Result {
        var config = try RunConfig(yaml: configYAML, file: "Configs/demo-seg.yaml", defaultName: "demo-seg")
        guard case .phantom(var phantom) = config.data.source else {
            throw MorphoTrainError.config(file: "Configs/demo-seg.yaml", key: "data", message: "the demo needs data.phantom")
        }
        let data = output + "/data"
        progress.note("writing \(phantom.count) phantoms to \(data)")
        let manifest = try Phantom.writeDataset(phantom, to: data)
        // One more phantom, never seen in training or validation.
        phantom.count += 1
        let (image, label) = Phantom.make(phantom, index: phantom.count - 1)
        let heldOutImage = output + "/heldout_image.nii.gz", heldOutLabel = output + "/heldout_label.nii.gz"
        try NIfTI.write(image, to: heldOutImage)
        try NIfTI.write(label, to: heldOutLabel, datatype: .uint8, like: image)

        config.data.source = .manifest(manifest)
        config.output.dir = output + "/run"
        let summary = try TrainingRun.run(.segmentation(config), output: config.output.dir, progress: progress)

        let segmenter = try Segmenter(checkpoint: config.output.dir + "/best.safetensors")
        let seg = output + "/heldout_seg.nii.gz", prob = output + "/heldout_prob.nii.gz"
        try segmenter.segmentFiles(inputs: [heldOutImage], output: seg, probabilities: prob)
        let evaluation = try Evaluation.files(prediction: seg, reference: heldOutLabel)
        return Result(
            dataDirectory: data, runDirectory: config.output.dir, heldOutImage: heldOutImage, heldOutLabel: heldOutLabel,
            segmentation: seg, probabilities: prob, summary: summary, heldOut: evaluation)
    }
}
