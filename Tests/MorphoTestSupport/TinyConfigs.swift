/// The small YAML run configs that tests of several targets train on (seconds per run on
/// 2 cores). Each returns the YAML text; the caller parses it with the config type it tests.
public enum TinyConfigs {
    /// "tiny": a 2D U-Net (channels 8, 16, 32; 3 classes) on twelve 48×48 phantoms with
    /// augmentation, batches of 4, validation every epoch. `loss` and `optimizer` are YAML flow
    /// mappings; `extra` is appended as top-level YAML.
    public static func phantomSegmentation(
        epochs: Int, steps: Int, threads: Int, loss: String = "{regional: dice_ce}", optimizer: String, extra: String = ""
    ) -> String {
        """
        name: tiny
        model:
          unet: {dims: 2, channels: [8, 16, 32], classes: 3}
        data:
          phantom: {size: [48, 48], count: 12, seed: 2}
          augmentation: {flip: [x], rotation: 10, scaling: 0.1, intensity: 0.1}
          threads: \(threads)
        loss: \(loss)
        training:
          epochs: \(epochs)
          steps_per_epoch: \(steps)
          batch_size: 4
          optimizer: \(optimizer)
          validate_every: 1
        \(extra)
        """
    }

    /// "tiny-joint": a joint segmentation + registration run on 32×32 phantoms, 10 images (8 for
    /// training), random pairs, regional + PRL segmentation terms with the rebalance schedule and
    /// a coupling term. `alternateSteps`, `labelledImages` and `lrSchedule` are left out when nil;
    /// `optimizer` and `lrSchedule` are YAML flow mappings; `extra` is appended as top-level YAML.
    public static func joint(
        strategy: String = "joint", alternateSteps: Int? = nil, labelledImages: Int?, prl: Double = 0.1,
        epochs: Int, steps: Int, batchSize: Int, optimizer: String, lrSchedule: String? = nil, extra: String = ""
    ) -> String {
        """
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
          \(alternateSteps.map { "alternate_steps: \($0)" } ?? "")
          \(labelledImages.map { "labelled_images: \($0)" } ?? "")
          coupling: {weight: 0.5}
        training:
          epochs: \(epochs)
          steps_per_epoch: \(steps)
          batch_size: \(batchSize)
          optimizer: \(optimizer)
          \(lrSchedule.map { "lr_schedule: \($0)" } ?? "")
          validate_every: 1
        \(extra)
        """
    }

    /// "tiny-reg": a 2D phantom registration run (32×32, 10 images, synthetic pairs, a small
    /// DisplacementNet). `lrSchedule` (a YAML flow mapping) is left out when nil; `loss` is the
    /// `registration.loss` line; `extra` is appended as top-level YAML.
    public static func registration(
        epochs: Int, steps: Int, threads: Int, optimizer: String, lrSchedule: String? = nil, validateEvery: Int,
        loss: String = "loss: {similarity: {kind: lcc, window: 7}}", extra: String = ""
    ) -> String {
        """
        name: tiny-reg
        model:
          kind: registration
          network: {dims: 2, classes: 3}
        data:
          phantom: {size: [32, 32], count: 10, noise: 0.05, seed: 3}
          normalization: {kind: percentile}
          threads: \(threads)
        registration:
          synthetic: {smoothing: 9, max_displacement: 3}
          validation_pairs: 6
          network: {encoder: [8, 16, 16], decoder: [16, 16, 16, 8]}
          \(loss)
        \(extra)
        training:
          epochs: \(epochs)
          steps_per_epoch: \(steps)
          batch_size: 4
          optimizer: \(optimizer)
        \(lrSchedule.map { "  lr_schedule: \($0)" } ?? "")
          validate_every: \(validateEvery)
        """
    }
}
