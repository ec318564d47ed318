import MorphoLosses
import MorphoTensor

extension BenchCase {
    /// The loss kernels of `../shared/bench/bench_torch.py` ("loss kernels" table), at the
    /// same shapes: `loss/lcc9/128` (local NCC, window 9, I and J `[1, 1, 128³]`, gradient for
    /// the moving image J only, as the PyTorch script), `loss/grad-l2/3x128` (Grad l2 of a
    /// `[1, 3, 128³]` field) and `loss/dice-ce/2x128` (MONAI-style Dice + CE on `[1, 2, 128³]`
    /// logits); and `loss/prl/2x80x96x80`, the joint step's PRL term (`[2, 1, 80, 96, 80]`
    /// probabilities against binary targets, K 0.5). `fwd` runs without recording gradients; `fwdbwd` is forward + `backward()`.
    static var lossCases: [BenchCase] {
        let shape = [1, 1, 128, 128, 128]
        return lossPair("loss/lcc9/128") {
            var rng = RandomGenerator(seed: 1)
            let fixed = Tensor.randomUniform(shape, using: &rng), moving = Tensor.randomUniform(shape, using: &rng)
            let loss = LocalNCC(window: 9)
            return ({ _ = withoutGradients { loss(fixed, moving) } }, {
                let m = moving.requiringGrad()
                loss(fixed, m).backward()
            })
        } + lossPair("loss/grad-l2/3x128") {
            var rng = RandomGenerator(seed: 2)
            let flow = Tensor.randomNormal([1, 3, 128, 128, 128], using: &rng)
            let loss = GradientSmoothnessLoss(penalty: .l2)
            return ({ _ = withoutGradients { loss(flow) } }, { loss(flow.requiringGrad()).backward() })
        } + lossPair("loss/dice-ce/2x128") {
            var rng = RandomGenerator(seed: 3)
            let logits = Tensor.randomNormal([1, 2, 128, 128, 128], using: &rng)
            let labels = Tensor(shape: shape) { p in for v in 0..<(128 * 128 * 128) { p[v] = rng.uniform() < 0.3 ? 1 : 0 } }
            let loss = DiceCELoss()
            return ({ _ = withoutGradients { loss(logits: logits, labels: labels) } }, {
                loss(logits: logits.requiringGrad(), labels: labels).backward()
            })
        } + lossPair("loss/prl/2x80x96x80") {
            // PRL as the joint step uses it: a foreground probability against a binary target,
            // both images of the pair, K 0.5.
            var rng = RandomGenerator(seed: 4)
            let shape = [2, 1, 80, 96, 80]
            let prediction = Tensor.randomUniform(shape, using: &rng)
            let target = Tensor(shape: shape) { p in for v in 0..<(2 * 80 * 96 * 80) { p[v] = rng.uniform() < 0.3 ? 1 : 0 } }
            let loss = PhysicalRegularizationLoss(K: 0.5)
            return ({ _ = withoutGradients { loss(prediction: prediction, target: target) } }, {
                loss(prediction: prediction.requiringGrad(), target: target).backward()
            })
        }
    }

    /// A `fwd` and a `fwdbwd` case sharing one setup recipe (run once per case).
    private static func lossPair(_ prefix: String, _ setup: @escaping @Sendable () -> (() -> Void, () -> Void)) -> [BenchCase] {
        [BenchCase(name: prefix + "/fwd") { setup().0 }, BenchCase(name: prefix + "/fwdbwd") { setup().1 }]
    }
}
