import MorphoTensor

/// One trainable tensor of a module (a convolution's weight, a norm's scale) or one piece of
/// non-trainable state (batch-norm running statistics).
///
/// `value` is an autograd leaf that modules read in their forward pass. Optimisers read
/// `grad` after `backward()` and change `value` in place through `update`, so the leaf — and
/// every reference a module holds to this object — stays the same across steps.
public final class Parameter {
    /// The current values; a gradient leaf when `isTrainable`.
    public internal(set) var value: Tensor
    /// False for state that is saved but not optimised (running statistics).
    public let isTrainable: Bool

    public init(_ initial: Tensor, trainable: Bool = true) {
        isTrainable = trainable
        value = trainable ? initial.detached().requiringGrad() : initial.detached()
    }

    public var shape: [Int] { value.shape }
    public var count: Int { value.count }
    /// d(loss)/d(value) accumulated by `backward()`, nil before (or when unused by the loss).
    public var grad: Tensor? { value.grad }
    public func zeroGrad() { value.zeroGrad() }
    /// Replaces the accumulated gradient (clipping, all-reduce); it must have `count` elements.
    public func setGrad(_ g: Tensor?) { value.setGrad(g) }

    /// Changes the values in place, outside autograd (optimiser steps, loading).
    public func update(_ body: (UnsafeMutablePointer<Float>) -> Void) {
        value.withUnsafeMutablePointer(body)
    }

    /// Overwrites the values with `source`'s (same element count; the shape is kept).
    public func assign(_ source: Tensor) {
        precondition(source.count == count, "cannot assign \(source.shape) to a parameter of \(shape)")
        source.withUnsafePointer { src in update { $0.update(from: src, count: count) } }
    }
}

/// A network layer or a whole network: a class whose parameters and sub-modules are visible
/// properties, listed once more by name for checkpoints and optimisers.
///
/// Conformers list their own `localParameters` (trainable and not), and their `children`
/// under the property name (`conv`, `norm`) or a list index (`encoder.0`); everything else —
/// dotted names (`encoder.0.conv.weight`), loading, training mode, flat gradient views — comes
/// from this protocol's extension. Names are stable: they depend only on the architecture.
public protocol Module: AnyObject {
    /// This module's own parameters and buffers, with local names (`weight`, `bias`, `running_mean`).
    var localParameters: [(String, Parameter)] { get }
    /// Sub-modules with local names.
    var children: [(String, any Module)] { get }
    /// Switches between training and evaluation behaviour for this module alone (batch norm).
    func setTrainingSelf(_ training: Bool)
}

extension Module {
    public var localParameters: [(String, Parameter)] { [] }
    public var children: [(String, any Module)] { [] }
    public func setTrainingSelf(_ training: Bool) {}

    /// Every parameter and buffer of this module and its descendants, depth first, with dotted names.
    public var namedState: [(String, Parameter)] {
        var out = localParameters
        for (name, child) in children {
            out += child.namedState.map { ("\(name).\($0.0)", $0.1) }
        }
        return out
    }

    /// The trainable parameters with their dotted names, in a stable order (what optimisers,
    /// gradient views and weight averaging iterate over).
    public var namedParameters: [(String, Parameter)] { namedState.filter { $0.1.isTrainable } }

    /// The trainable parameters in `namedParameters` order.
    public var parameters: [Parameter] { namedParameters.map(\.1) }

    /// Number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Training mode (batch statistics) or evaluation mode (running statistics), recursively.
    public func setTraining(_ training: Bool) {
        setTrainingSelf(training)
        for (_, child) in children { child.setTraining(training) }
    }

    /// Clears every parameter's gradient.
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }

    /// Copies of all parameters and buffers by dotted name (for checkpoints).
    public func stateDictionary() -> [(String, Tensor)] {
        namedState.map { ($0.0, $0.1.value.detached()) }
    }

    /// Loads values saved by `stateDictionary()`, in place. Every parameter and buffer must be
    /// present with its element count; extra keys are an error too, so a checkpoint of another
    /// architecture is refused rather than half-loaded. Nothing is written unless all match.
    public func load(_ state: [String: Tensor]) throws(ModuleError) {
        let named = namedState
        for (name, p) in named {
            guard let t = state[name] else { throw .missingParameter(name) }
            guard t.count == p.count else { throw .shapeMismatch(name, expected: p.shape, found: t.shape) }
        }
        let known = Set(named.map(\.0))
        if let extra = state.keys.sorted().first(where: { !known.contains($0) }) { throw .unexpectedParameter(extra) }
        for (name, p) in named { p.assign(state[name]!) }
    }

    /// All gradients in one contiguous buffer (`parameters` order, zeros for a parameter without
    /// one): what an all-reduce across processes sums.
    public func gatherGradients() -> [Float] { parameters.gatherGradients() }

    /// Sets every gradient from a buffer laid out as `gatherGradients()`.
    public func scatterGradients(_ flat: [Float]) { parameters.scatterGradients(flat) }

    /// All trainable values in one contiguous buffer (weight averaging across processes).
    public func gatherParameters() -> [Float] { parameters.gatherValues() }

    /// Sets every trainable value from a buffer laid out as `gatherParameters()`.
    public func scatterParameters(_ flat: [Float]) { parameters.scatterValues(flat) }
}

extension Array where Element == Parameter {
    /// Total number of scalars.
    public var scalarCount: Int { reduce(0) { $0 + $1.count } }

    /// The gradients concatenated in order; zeros where a parameter has none.
    public func gatherGradients() -> [Float] {
        var flat = [Float](repeating: 0, count: scalarCount)
        flat.withUnsafeMutableBufferPointer { buf in
            var offset = 0
            for p in self {
                if let g = p.grad { g.withUnsafePointer { (buf.baseAddress! + offset).update(from: $0, count: p.count) } }
                offset += p.count
            }
        }
        return flat
    }

    /// Sets every gradient from a buffer laid out as `gatherGradients()`.
    public func scatterGradients(_ flat: [Float]) {
        precondition(flat.count == scalarCount, "\(flat.count) gradient values for \(scalarCount) parameters")
        var offset = 0
        for p in self {
            p.setGrad(Tensor(shape: p.shape, data: [Float](flat[offset ..< offset + p.count])))
            offset += p.count
        }
    }

    /// The values concatenated in order.
    public func gatherValues() -> [Float] {
        var flat: [Float] = []
        flat.reserveCapacity(scalarCount)
        for p in self { flat += p.value.scalars }
        return flat
    }

    /// Sets every value from a buffer laid out as `gatherValues()`.
    public func scatterValues(_ flat: [Float]) {
        precondition(flat.count == scalarCount, "\(flat.count) values for \(scalarCount) parameters")
        flat.withUnsafeBufferPointer { buf in
            var offset = 0
            for p in self {
                p.update { $0.update(from: buf.baseAddress! + offset, count: p.count) }
                offset += p.count
            }
        }
    }
}

/// Errors of the network layer, each naming the parameter involved.
public enum ModuleError: Error, CustomStringConvertible, Equatable {
    case missingParameter(String)
    case unexpectedParameter(String)
    case shapeMismatch(String, expected: [Int], found: [Int])
    case optimizerState(String, reason: String)

    public var description: String {
        switch self {
        case .missingParameter(let name): "parameter '\(name)' is missing from the loaded state"
        case .unexpectedParameter(let name): "the loaded state has '\(name)', which this network does not"
        case .shapeMismatch(let name, let expected, let found): "parameter '\(name)' has shape \(found) in the loaded state, the network expects \(expected)"
        case .optimizerState(let name, let reason): "optimiser state '\(name)': \(reason)"
        }
    }
}
