import MorphoTensor

/// Stochastic gradient descent with momentum, `torch.optim.SGD` semantics: per parameter
///
///     g ← ∇ + λ·θ
///     b ← g on the first step, then b ← μ·b + (1 − dampening)·g      (when μ > 0)
///     g ← g + μ·b (Nesterov) or b
///     θ ← θ − lr·g
///
/// State per parameter: `momentum_buffer` (b) and its step count.
public final class SGD: Optimizer {
    public let namedParameters: [(String, Parameter)]
    public var learningRate: Float
    public var momentum: Float
    public var dampening: Float
    public var weightDecay: Float
    public var nesterov: Bool
    var slots: OptimizerSlots

    public init(_ parameters: [(String, Parameter)], learningRate: Float, momentum: Float = 0, dampening: Float = 0,
                weightDecay: Float = 0, nesterov: Bool = false) {
        precondition(!nesterov || (momentum > 0 && dampening == 0), "Nesterov momentum needs momentum > 0 and no dampening")
        self.namedParameters = parameters.filter { $0.1.isTrainable }
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        slots = OptimizerSlots(names: namedParameters.map(\.0))
    }

    public func step() {
        for (i, (_, p)) in namedParameters.enumerated() {
            guard let grad = p.grad else { continue }
            slots.steps[i] += 1
            let first = slots.steps[i] == 1
            var b = slots.buffers[i]["momentum_buffer"] ?? [Float](repeating: 0, count: p.count)
            let mu = momentum, keep = 1 - dampening, wd = weightDecay, lr = learningRate, nesterov = nesterov
            grad.withUnsafePointer { g in
                b.withUnsafeMutableBufferPointer { bb in
                    let pb = bb.baseAddress!
                    p.update { theta in
                        for j in 0..<p.count {
                            var gj = g[j] + wd * theta[j]
                            if mu != 0 {
                                pb[j] = first ? gj : mu * pb[j] + keep * gj
                                gj = nesterov ? gj + mu * pb[j] : pb[j]
                            }
                            theta[j] -= lr * gj
                        }
                    }
                }
            }
            if momentum != 0 { slots.buffers[i]["momentum_buffer"] = b }
        }
    }

    public func stateDictionary() -> [(String, Tensor)] { slots.dictionary() }

    public func loadState(_ state: [String: Tensor]) throws(ModuleError) {
        try slots.load(state, counts: namedParameters.map { $0.1.count }, keys: ["momentum_buffer"])
    }
}
