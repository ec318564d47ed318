import Foundation
import MorphoKernels
import MorphoTensor

/// Adam (Kingma & Ba 2015), `torch.optim.Adam` semantics: per parameter
///
///     g ← ∇ + λ·θ                       (L2 weight decay λ, coupled; 0 by default)
///     m ← β₁·m + (1 − β₁)·g,   v ← β₂·v + (1 − β₂)·g²
///     θ ← θ − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
///
/// State per parameter: `exp_avg` (m), `exp_avg_sq` (v) and its step count t.
public class Adam: Optimizer {
    public let namedParameters: [(String, Parameter)]
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float
    /// AdamW's decoupled decay (θ ← θ·(1 − lr·λ) before the Adam update) instead of L2.
    let decoupledWeightDecay: Bool
    var slots: OptimizerSlots

    public convenience init(_ parameters: [(String, Parameter)], learningRate: Float = 1e-3, beta1: Float = 0.9,
                            beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0) {
        self.init(parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay, decoupled: false)
    }

    init(_ parameters: [(String, Parameter)], learningRate: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float,
         decoupled: Bool) {
        self.namedParameters = parameters.filter { $0.1.isTrainable }
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        decoupledWeightDecay = decoupled
        slots = OptimizerSlots(names: namedParameters.map(\.0))
    }

    public func step() {
        for (i, (_, p)) in namedParameters.enumerated() {
            guard let grad = p.grad else { continue }
            slots.steps[i] += 1
            let t = Double(slots.steps[i])
            // Taken out of the slots (not copied): the update then writes the only copy.
            var m = slots.buffers[i].removeValue(forKey: "exp_avg") ?? [Float](repeating: 0, count: p.count)
            var v = slots.buffers[i].removeValue(forKey: "exp_avg_sq") ?? [Float](repeating: 0, count: p.count)
            let b1 = beta1, b2 = beta2, eps = eps
            let stepSize = Float(Double(learningRate) / (1 - Double(beta1).pow(t)))
            let correction2 = Float((1 - Double(beta2).pow(t)).squareRoot())
            let l2 = decoupledWeightDecay ? 0 : weightDecay
            let shrink = decoupledWeightDecay ? 1 - learningRate * weightDecay : 1
            grad.withUnsafePointer { g in
                m.withUnsafeMutableBufferPointer { mb in
                    v.withUnsafeMutableBufferPointer { vb in
                        let pm = mb.baseAddress!, pv = vb.baseAddress!
                        p.update { theta in
                            // Elementwise, so any split over threads gives the same values.
                            Parallel.forRanges(p.count) { r in
                                for j in r {
                                    let gj = g[j] + l2 * theta[j]
                                    pm[j] = b1 * pm[j] + (1 - b1) * gj
                                    pv[j] = b2 * pv[j] + (1 - b2) * gj * gj
                                    let denom = pv[j].squareRoot() / correction2 + eps
                                    theta[j] = theta[j] * shrink - stepSize * pm[j] / denom
                                }
                            }
                        }
                    }
                }
            }
            slots.buffers[i]["exp_avg"] = m
            slots.buffers[i]["exp_avg_sq"] = v
        }
    }

    public func stateDictionary() -> [(String, Tensor)] { slots.dictionary() }

    public func loadState(_ state: [String: Tensor]) throws(ModuleError) {
        try slots.load(state, counts: namedParameters.map { $0.1.count }, keys: ["exp_avg", "exp_avg_sq"])
    }
}

/// AdamW (Loshchilov & Hutter 2019), `torch.optim.AdamW` semantics: Adam whose weight decay
/// is decoupled from the gradient, θ ← θ·(1 − lr·λ) before the Adam update (λ = 0.01 by default).
public final class AdamW: Adam {
    public init(_ parameters: [(String, Parameter)], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                eps: Float = 1e-8, weightDecay: Float = 0.01) {
        super.init(parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay, decoupled: true)
    }
}

extension Double {
    func pow(_ t: Double) -> Double { Foundation.pow(self, t) }
}
