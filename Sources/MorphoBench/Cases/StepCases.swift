import MorphoLosses
import MorphoNN
import MorphoTensor

extension BenchCase {
    /// Whole training steps with the shapes of `/work/shared/bench/bench_torch.py`: forward,
    /// loss, backward and an Adam update. `seg3d/unet/SIZE/step` and `seg2d/unet/256x8/step` run
    /// MONAI's `UNet(channels=(16, 32, 64, 128), strides=(2, 2, 2))` layout with two classes and
    /// Dice + CE, on one 1-channel volume of SIZE³ or a batch of 8 slices of 256².
    static var stepCases: [BenchCase] {
        var cases: [BenchCase] = []
        for size in [64, 96, 128] {
            cases.append(segmentationStep(name: "seg3d/unet/\(size)/step", shape: [1, 1, size, size, size]))
        }
        cases.append(segmentationStep(name: "seg2d/unet/256x8/step", shape: [8, 1, 256, 256]))
        // The segmentation half of `joint3d/80x96x80/step`: the joint U-Net (three classes, the
        // config's default leaky ReLU, not MONAI's PReLU) on both images of the pair, so joint ≤
        // this + `reg3d/vxm/80x96x80/step` is the comparison.
        cases.append(segmentationStep(name: "seg3d/unet/80x96x80x2/step", shape: [2, 1, 80, 96, 80], classes: 3,
                                      activation: .leakyRelu(0.01)))
        // The same, with the joint step's segmentation objective rather than Dice+CE alone.
        cases.append(segmentationStep(name: "seg3d/unet/80x96x80x2/jointterms/step", shape: [2, 1, 80, 96, 80], classes: 3,
                                      activation: .leakyRelu(0.01), jointTerms: true))
        return cases
    }

    /// Labels: class 1 in a centred ball, and with three classes class 2 in its inner half.
    /// With `jointTerms`, the loss is the segmentation part of `joint3d/80x96x80/step` (the
    /// config `JointCases` declares): `(1 − α)·Dice+CE + α·boundary` (classes 1 and 2, signed
    /// distance maps computed once at setup) `+ 0.1·PRL` (K 0.5) of the foreground probability
    /// `1 − p₀` against target fluxes computed once at setup, α = 0.01 — what a segmentation-only
    /// run with that objective costs per step, so the joint step can be set beside it.
    static func segmentationStep(
        name: String, shape: [Int], classes: Int = 2, activation: ActivationKind = .prelu, jointTerms: Bool = false
    ) -> BenchCase {
        BenchCase(name: name) {
            var rng = RandomGenerator(seed: 1)
            let net = UNet(spatialRank: shape.count - 2, inChannels: 1, outChannels: classes, channels: [16, 32, 64, 128],
                           activation: activation, rng: &rng)
            let optimizer = Adam(net.namedParameters, learningRate: 1e-4)
            let image = Tensor.randomNormal(shape, using: &rng)
            // Labels: a centred ball, as a class-index map [N, 1, spatial...].
            var labelShape = shape
            labelShape[1] = 1
            let labels = Tensor(shape: labelShape) { p in
                let spatial = Array(shape.dropFirst(2))
                let count = spatial.reduce(1, *)
                for n in 0..<shape[0] {
                    for v in 0..<count {
                        var rest = v, r2 = 0.0
                        for axis in spatial.indices.reversed() {
                            let c = Double(rest % spatial[axis]) - Double(spatial[axis]) / 2
                            r2 += c * c / (Double(spatial[axis]) * Double(spatial[axis]) / 9)
                            rest /= spatial[axis]
                        }
                        p[n * count + v] = r2 < 1 ? (classes > 2 && r2 < 0.25 ? 2 : 1) : 0
                    }
                }
            }
            let loss = DiceCELoss()
            guard jointTerms else {
                return {
                    net.zeroGrad()
                    let l = loss(logits: net(image), labels: labels)
                    l.backward()
                    optimizer.step()
                }
            }
            let spatial = Array(shape.dropFirst(2))
            let distanceMaps = signedDistanceMaps(labels: labels, classes: classes, spatial: spatial)
            let boundary = BoundaryLoss(idc: Array(1..<classes))
            let prl = PhysicalRegularizationLoss(K: 0.5)
            let foreground = labels.scalars.map { $0 > 0 ? Float(1) : 0 }
            let fluxes = prl.targetFluxes(Tensor(shape: labels.shape, data: foreground))
            let alpha: Float = 0.01
            return {
                net.zeroGrad()
                let logits = net(image)
                let probs = logits.softmax()
                let l = (1 - alpha) * loss(logits: logits, labels: labels)
                    + alpha * boundary(probs: probs, distanceMaps: distanceMaps)
                    + 0.1 * prl(prediction: 1 - probs.slice(axis: 1, 0..<1), targetFluxes: fluxes)
                l.backward()
                optimizer.step()
            }
        }
    }
}

extension BenchCase {
    /// One VoxelMorph training step with the default network (encoder 16, 32, 32, 32; decoder
    /// 32, 32, 32, 32, 32, 16, 16): warp the moving image, local NCC (window 9) + 0.01 · Grad-l2,
    /// backward, Adam — `reg2d/vxm/192x160x8/step`, `reg3d/vxm/80x96x80/step`,
    /// `reg3d/vxm/160x192x224/step`; and `reg3d/vxm/160x192x224/register`, registering one pair
    /// with the network (forward and warp, no gradients).
    static var registrationCases: [BenchCase] {
        [
            registrationStep(name: "reg2d/vxm/192x160x8/step", shape: [8, 1, 192, 160]),
            registrationStep(name: "reg3d/vxm/80x96x80/step", shape: [1, 1, 80, 96, 80]),
            registrationStep(name: "reg3d/vxm/160x192x224/step", shape: [1, 1, 160, 192, 224]),
            BenchCase(name: "reg3d/vxm/160x192x224/register") {
                let (net, moving, fixed) = registrationInputs([1, 1, 160, 192, 224])
                return {
                    withoutGradients {
                        let flow = net(moving: moving, fixed: fixed)
                        _ = warp(moving, flow)
                    }
                }
            },
        ]
    }

    static func registrationInputs(_ shape: [Int]) -> (DisplacementNet, Tensor, Tensor) {
        var rng = RandomGenerator(seed: 2)
        let net = DisplacementNet(spatialRank: shape.count - 2, rng: &rng)
        let fixed = Tensor.randomUniform(shape, using: &rng)
        let moving = Tensor.randomUniform(shape, using: &rng)
        return (net, moving, fixed)
    }

    static func registrationStep(name: String, shape: [Int]) -> BenchCase {
        BenchCase(name: name) {
            let (net, moving, fixed) = registrationInputs(shape)
            let optimizer = Adam(net.namedParameters, learningRate: 1e-4)
            let similarity = LocalNCC(window: 9)
            let smoothness = GradientSmoothnessLoss(penalty: .l2)
            return {
                net.zeroGrad()
                let flow = net(moving: moving, fixed: fixed)
                let loss = similarity(warp(moving, flow), fixed) + 0.01 * smoothness(flow)
                loss.backward()
                optimizer.step()
            }
        }
    }
}
