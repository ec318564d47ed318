import MorphoTensor

/// A gradient-descent rule over a fixed list of named parameters (PyTorch semantics: the state
/// of each parameter is created on its first step; a parameter without a gradient is skipped).
///
/// The usual step: `loss.backward()`, optionally `clipGradientNorm`, `optimizer.step()`,
/// `optimizer.zeroGrad()`. The state is saved and restored by name with
/// `stateDictionary()` / `loadState(_:)` so a resumed run continues the same trajectory.
public protocol Optimizer: AnyObject {
    /// The optimised parameters with their dotted names (the keys of the saved state).
    var namedParameters: [(String, Parameter)] { get }
    /// The step size used by the next `step()`; schedules set it before each step.
    var learningRate: Float { get set }
    /// Updates every parameter that has a gradient, in place.
    func step()
    /// The per-parameter state (moments, momentum buffers, step counts) as named tensors.
    func stateDictionary() -> [(String, Tensor)]
    /// Restores a state saved by `stateDictionary()`; parameters without saved state start fresh.
    func loadState(_ state: [String: Tensor]) throws(ModuleError)
}

extension Optimizer {
    public var parameters: [Parameter] { namedParameters.map(\.1) }
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
}

/// Per-parameter optimiser buffers, saved as `<parameter>.<buffer>`.
struct OptimizerSlots {
    let names: [String]
    var buffers: [[String: [Float]]]
    var steps: [Int]

    init(names: [String]) {
        self.names = names
        buffers = Array(repeating: [:], count: names.count)
        steps = Array(repeating: 0, count: names.count)
    }

    func dictionary() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for (i, name) in names.enumerated() where steps[i] > 0 {
            out.append(("\(name).step", Tensor(shape: [1], data: [Float(steps[i])])))
            for key in buffers[i].keys.sorted() {
                let b = buffers[i][key]!
                out.append(("\(name).\(key)", Tensor(shape: [b.count], data: b)))
            }
        }
        return out
    }

    mutating func load(_ state: [String: Tensor], counts: [Int], keys: [String]) throws(ModuleError) {
        var fresh = OptimizerSlots(names: names)
        for (i, name) in names.enumerated() {
            guard let step = state["\(name).step"] else { continue }
            guard step.count == 1, step.item >= 1 else { throw .optimizerState("\(name).step", reason: "expected one positive count") }
            fresh.steps[i] = Int(step.item)
            for key in keys {
                guard let t = state["\(name).\(key)"] else { continue }
                guard t.count == counts[i] else {
                    throw .optimizerState("\(name).\(key)", reason: "\(t.count) values for a parameter of \(counts[i])")
                }
                fresh.buffers[i][key] = t.scalars
            }
        }
        self = fresh
    }
}

/// Rescales all gradients together so that their global L2 norm is at most `maxNorm`
/// (PyTorch `clip_grad_norm_`: factor maxNorm / (norm + 1e-6) when below 1). Returns the norm
/// before clipping, so a caller can log it or skip a step on a non-finite value.
@discardableResult
public func clipGradientNorm(_ parameters: [Parameter], maxNorm: Float) -> Float {
    var total = 0.0
    for p in parameters {
        guard let g = p.grad else { continue }
        g.withUnsafeBufferPointer { b in for v in b { total += Double(v) * Double(v) } }
    }
    let norm = total.squareRoot()
    let factor = Double(maxNorm) / (norm + 1e-6)
    if factor < 1 {
        for p in parameters { if let g = p.grad { p.setGrad(withoutGradients { g * Float(factor) }) } }
    }
    return Float(norm)
}
