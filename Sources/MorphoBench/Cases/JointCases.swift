import MorphoNN
import MorphoTensor
import MorphoTrain

extension BenchCase {
    /// `joint3d/80x96x80/step`: one fully joint training step of `JointTask` on an 80×96×80
    /// (x, y, z) phantom pair, batch 1 — U-Net (channels 16, 32, 64, 128, strides 2, 2, 2, three
    /// classes) on both images and the default `DisplacementNet` (encoder 16, 32, 32, 32) on the
    /// pair, forward and backward through every loss family (LCC window 9 + grad-l2; Dice+CE,
    /// boundary loss on cached distance maps and PRL on both labelled images; the coupling Dice of
    /// the warped moving labels), then one Adam update of both networks; and
    /// `reg3d/vxm/80x96x80/labels/step`, its registration half trained alone on the same labelled
    /// pair. `joint3d/80x96x80/augmented/step`: the same step on a batch augmented as
    /// `Examples/joint-mni152/joint-augmented.yaml` does (flip x, rotation ±10°, zoom ±10 %,
    /// intensity ±10 %, probability 1 here so the batch is transformed); `…/batch` and
    /// `…/augmented/batch`: making that batch (the loader's work per step, the PRL target fluxes
    /// of augmented labels included).
    static var jointCases: [BenchCase] {
        [
            BenchCase(name: "joint3d/80x96x80/step", countingFLOPs: {
                let task = joint3dTask(augmented: false)
                let batch = task.makeBatch(1, 0)
                precondition(batch.movingLabelled == [true] && batch.fixedLabelled == [true])
                return trainingStep(task, task.config.run)
            }),
            BenchCase(name: "joint3d/80x96x80/augmented/step", countingFLOPs: {
                let task = joint3dTask(augmented: true)
                return trainingStep(task, task.config.run)
            }),
            BenchCase(name: "joint3d/80x96x80/batch") {
                let task = joint3dTask(augmented: false)
                return { _ = task.makeBatch(1, 0) }
            },
            BenchCase(name: "joint3d/80x96x80/augmented/batch") {
                let task = joint3dTask(augmented: true)
                return { _ = task.makeBatch(1, 0) }
            },
            // The registration half of that step on its labelled pair, trained alone: what
            // `morphoseg train` runs for registration with label maps (VoxelMorph's semi-supervised
            // objective: LCC + grad-l2 + Dice of the warped one-hot moving labels, weight 1 as the
            // joint coupling's), on the same phantoms.
            BenchCase(name: "reg3d/vxm/80x96x80/labels/step", countingFLOPs: {
                let config = try! RegistrationRunConfig(yaml: """
                    name: bench-reg-labels
                    model:
                      kind: registration
                      network: {dims: 3, classes: 3}
                    data:
                      phantom: {size: [80, 96, 80], count: 3, seed: 1}
                      normalization: {kind: percentile}
                    registration:
                      pairs: random
                      validation_pairs: 1
                      loss: {dice: {weight: 1}}
                    training: {batch_size: 1, optimizer: {kind: adam, lr: 0.0001}}
                    """)
                let task = try! RegistrationTask(config: config)
                precondition(task.makeBatch(1, 0).movingLabels != nil)
                return trainingStep(task, config.run)
            }),
        ]
    }

    /// The task of `joint3d/80x96x80/step`, with `augmented`: `data.augmentation` flip x,
    /// rotation 10°, scaling 0.1, intensity 0.1, probability 1.
    static func joint3dTask(augmented: Bool) -> JointTask {
        let augmentation = augmented
            ? "\n  augmentation: {flip: [x], rotation: 10, scaling: 0.1, intensity: 0.1, probability: 1}" : ""
        let config = try! JointRunConfig(yaml: """
            name: bench-joint
            model:
              kind: joint
              unet: {dims: 3, channels: [16, 32, 64, 128], strides: [2, 2, 2], classes: 3}
            data:
              phantom: {size: [80, 96, 80], count: 3, seed: 1}
              normalization: {kind: percentile}\(augmentation)
            loss:
              regional: dice_ce
              prl: {weight: 0.1, K: 0.5}
            registration:
              pairs: random
              validation_pairs: 1
            joint: {strategy: joint}
            training: {batch_size: 1, optimizer: {kind: adam, lr: 0.0001}}
            """)
        return try! JointTask(config: config)
    }
}
