import MorphoLosses
import MorphoNN
import MorphoTensor
import MorphoTrain

extension BenchCase {
    /// Whole training steps with the shapes of `../shared/bench/bench_torch.py`, each what
    /// `morphoseg train` runs on a config (its task's objective, one batch from its loader, one
    /// `TrainingStep`: forward, loss, backward, clipping, Adam). `seg3d/unet/SIZE/step` and
    /// `seg2d/unet/256x8/step` run MONAI's `UNet(channels=(16, 32, 64, 128), strides=(2, 2, 2))`
    /// layout (instance norm, PReLU) with two classes and Dice + CE, on one phantom volume of
    /// SIZE³ or a batch of 8 phantom slices of 256².
    static var stepCases: [BenchCase] {
        var cases: [BenchCase] = []
        for size in [64, 96, 128] {
            cases.append(segmentationStep(name: "seg3d/unet/\(size)/step", dims: 3, size: size, batch: 1))
        }
        cases.append(segmentationStep(name: "seg2d/unet/256x8/step", dims: 2, size: 256, batch: 8))
        // The segmentation half of `joint3d/80x96x80/step`: the joint U-Net (three classes, the
        // config's default leaky ReLU, not MONAI's PReLU) on both images of the pair, so joint ≤
        // this + `reg3d/vxm/80x96x80/step` is the comparison.
        cases.append(segmentationStep(
            name: "seg3d/unet/80x96x80x2/step", dims: 3, size: [80, 96, 80], batch: 2, classes: 3, activation: "leaky_relu"))
        // The same with the joint step's term families: (1 − α)·Dice+CE + α·boundary (α = 0.01)
        // + 0.1·PRL (K 0.5), at the joint step's cost (one class map for PRL and boundary, as
        // the joint's PRL of the foreground map is one).
        cases.append(segmentationStep(
            name: "seg3d/unet/80x96x80x2/jointterms/step", dims: 3, size: [80, 96, 80], batch: 2, classes: 3,
            activation: "leaky_relu",
            loss: "{regional: dice_ce, boundary: {enabled: true, idc: [1]}, prl: {weight: 0.1, K: 0.5}, schedule: {kind: constant, alpha0: 0.01}}"))
        // Its loader's work per step (drawing the batch of 2 whole-volume patches with their
        // distance maps and PRL target fluxes), without and with the augmentation of
        // `Examples/joint-mni152/unet-augmented.yaml` at probability 1: the segmentation step's
        // augmentation cost is the difference (compare `joint3d/80x96x80/augmented/batch`).
        for augmented in [false, true] {
            cases.append(BenchCase(name: "seg3d/unet/80x96x80x2/jointterms\(augmented ? "/augmented" : "")/batch") {
                let config = try! RunConfig(yaml: """
                    name: bench-seg
                    model:
                      kind: segmentation
                      unet: {dims: 3, channels: [16, 32, 64, 128], strides: [2, 2, 2], norm: instance, classes: 3}
                    data:
                      phantom: {size: [80, 96, 80], count: 2, seed: 1}
                      validation: {fraction: 0.5}
                      patch: {size: [80, 96, 80], foreground: 0.5}
                      augmentation: \(augmented ? "{flip: [x], rotation: 10, scaling: 0.1, intensity: 0.1, probability: 1}" : "{}")
                    loss: {regional: dice_ce, boundary: {enabled: true, idc: [1]}, prl: {weight: 0.1, K: 0.5}, schedule: {kind: constant, alpha0: 0.01}}
                    training: {batch_size: 2, optimizer: {kind: adam, lr: 0.0001}}
                    """)
                let task = try! SegmentationTask(config: config)
                return { _ = task.makeBatch(1, 0) }
            })
        }
        return cases
    }

    static func segmentationStep(
        name: String, dims: Int, size: Int, batch: Int, classes: Int = 2, activation: String = "prelu",
        loss: String = "{regional: dice_ce, boundary: {enabled: false}}"
    ) -> BenchCase {
        segmentationStep(name: name, dims: dims, size: Array(repeating: size, count: dims), batch: batch, classes: classes,
                         activation: activation, loss: loss)
    }

    /// A segmentation run's step on phantoms of `size` (x, y, z), whole images as patches.
    static func segmentationStep(
        name: String, dims: Int, size: [Int], batch: Int, classes: Int = 2, activation: String = "prelu",
        loss: String = "{regional: dice_ce, boundary: {enabled: false}}"
    ) -> BenchCase {
        BenchCase(name: name, countingFLOPs: {
            let config = try! RunConfig(yaml: """
                name: bench-seg
                model:
                  kind: segmentation
                  unet: {dims: \(dims), channels: [16, 32, 64, 128], strides: [2, 2, 2], norm: instance, activation: \(activation), classes: \(classes)}
                data:
                  phantom: {size: \(size), count: 2, seed: 1}
                  validation: {fraction: 0.5}
                  patch: {size: \(size), foreground: 0.5}
                loss: \(loss)
                training: {batch_size: \(batch), optimizer: {kind: adam, lr: 0.0001}}
                """)
            return trainingStep(try! SegmentationTask(config: config), config)
        })
    }

    /// One training step of `task` as the trainer runs it (`TrainingStep` with the optimiser and
    /// clipping of `config.training`), on the task's batch 0 of stream 1.
    static func trainingStep<Task: TrainingTask>(_ task: Task, _ config: RunConfig) -> () -> Void {
        let batch = task.makeBatch(1, 0)
        let step = TrainingStep(model: task.model, training: config.training)
        task.model.setTraining(true)
        return { try! step { task.loss(batch, epoch: 0) } }
    }
}

extension BenchCase {
    /// One VoxelMorph training step as a registration run takes it, with the default network
    /// (encoder 16, 32, 32, 32; decoder 32, 32, 32, 32, 32, 16, 16): warp the moving image,
    /// local NCC (window 9) + 0.01 · Grad-l2, backward, clipping, Adam, on random pairs of
    /// phantoms — `reg2d/vxm/192x160x8/step`, `reg3d/vxm/80x96x80/step`,
    /// `reg3d/vxm/160x192x224/step` (sizes [D, H, W]); and `reg3d/vxm/160x192x224/register`,
    /// registering one pair with the network (forward and warp, no gradients).
    static var registrationCases: [BenchCase] {
        [
            registrationStep(name: "reg2d/vxm/192x160x8/step", dims: 2, size: [160, 192], batch: 8),
            registrationStep(name: "reg3d/vxm/80x96x80/step", dims: 3, size: [80, 96, 80], batch: 1),
            registrationStep(name: "reg3d/vxm/160x192x224/step", dims: 3, size: [224, 192, 160], batch: 1),
            BenchCase(name: "reg3d/vxm/160x192x224/register", countingFLOPs: {
                var rng = RandomGenerator(seed: 2)
                let shape = [1, 1, 160, 192, 224]
                let net = DisplacementNet(spatialRank: 3, rng: &rng)
                let fixed = Tensor.randomUniform(shape, using: &rng)
                let moving = Tensor.randomUniform(shape, using: &rng)
                return {
                    withoutGradients {
                        let flow = net(moving: moving, fixed: fixed)
                        _ = warp(moving, flow)
                    }
                }
            }),
        ]
    }

    /// A registration run's step on random pairs of phantoms of `size` (x, y, z).
    static func registrationStep(name: String, dims: Int, size: [Int], batch: Int) -> BenchCase {
        BenchCase(name: name, countingFLOPs: {
            let config = try! RegistrationRunConfig(yaml: """
                name: bench-reg
                model:
                  kind: registration
                  network: {dims: \(dims), classes: 3}
                data:
                  phantom: {size: \(size), count: 3, seed: 1}
                  normalization: {kind: percentile}
                registration:
                  pairs: random
                  validation_pairs: 1
                  loss: {similarity: {kind: lcc, window: 9, weight: 1}, smoothness: {kind: grad_l2, weight: 0.01}}
                training: {batch_size: \(batch), optimizer: {kind: adam, lr: 0.0001}}
                """)
            return trainingStep(try! RegistrationTask(config: config), config.run)
        })
    }
}
