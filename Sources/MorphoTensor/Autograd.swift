import MorphoKernels

/// Reverse-mode automatic differentiation, define-by-run.
///
/// Every differentiable operation computes its forward value and, right beside it, registers a
/// backward closure with `Tensor.record(_:inputs:backward:)`. The closure maps d(loss)/d(output)
/// to d(loss)/d(input) for each input. `backward()` walks the recorded graph from a scalar in
/// reverse topological order, accumulates gradients into the inputs' nodes, and drops each
/// closure (and the intermediate tensors it captured) as soon as it has run, so memory stays
/// bounded over thousands of steps. Leaves (parameters) keep their accumulated `grad`.
///
/// A node's accumulated gradient is handed to its closure, not lent: the node lets go of it
/// first, so an op recorded with `recordOwningGradient(_:inputs:backward:)` may overwrite it in place
/// when nothing else holds its storage (`Tensor.hasUniqueStorage()`), e.g. to apply a rectifier's
/// derivative without a second tensor of the output's size.
public final class GradNode {
    /// Nodes of the inputs (nil for inputs that need no gradient).
    var inputs: [GradNode?]
    /// Maps d(loss)/d(output), which it owns for the call, to one gradient per input.
    var backwardFn: ((inout Tensor) -> [Tensor?])?
    /// The accumulated gradient d(loss)/d(this tensor); kept only on leaves after `backward()`.
    public internal(set) var grad: Tensor?
    public let isLeaf: Bool

    init(inputs: [GradNode?], backward: ((inout Tensor) -> [Tensor?])?, isLeaf: Bool) {
        self.inputs = inputs
        self.backwardFn = backward
        self.isLeaf = isLeaf
    }

    /// Adds a gradient contribution: in place when nothing else holds the accumulated gradient's
    /// storage (the usual case from the second contribution on), else into a new tensor — a
    /// first contribution is often shared, e.g. `a + b` hands the same gradient to both inputs.
    func accumulate(_ g: Tensor) {
        guard var sum = grad else {
            grad = g.detached()
            return
        }
        grad = nil  // so that `sum` may hold the only reference
        if sum.hasUniqueStorage() {
            sum.addInPlaceNoGrad(g)
        } else {
            sum = sum.addingNoGrad(g)
        }
        grad = sum
    }
}

/// Whether operations record their backward. Off inside `withoutGradients` (inference,
/// validation, optimiser updates).
public enum GradientMode {
    @TaskLocal public static var isEnabled = true
}

/// Runs `body` without recording any backward (inference mode).
public func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
    try GradientMode.$isEnabled.withValue(false) { try body() }
}

extension Tensor {
    /// True when this tensor is a leaf that accumulates a gradient or depends on one.
    public var requiresGrad: Bool { node != nil }

    /// This tensor as a leaf that accumulates d(loss)/d(self) in `grad` (a trainable parameter
    /// or an input whose gradient is wanted). Shares storage with `self`.
    public func requiringGrad() -> Tensor {
        var t = Tensor(shape: shape, storage: storage)
        t.node = GradNode(inputs: [], backward: nil, isLeaf: true)
        return t
    }

    /// The accumulated gradient of a leaf after `backward()`, nil before.
    public var grad: Tensor? { node?.grad }

    /// Clears a leaf's accumulated gradient.
    public func zeroGrad() { node?.grad = nil }

    /// Replaces a leaf's accumulated gradient (clipping, averaging across processes); nil clears it.
    public func setGrad(_ g: Tensor?) {
        precondition(node?.isLeaf == true, "setGrad on a tensor that is not a gradient leaf")
        precondition(g.map { $0.count == count } ?? true, "gradient of \(g!.shape) set on \(shape)")
        node?.grad = g.map { Tensor(shape: shape, storage: $0.storage) }
    }

    /// Attaches an operation's backward to its freshly computed `value`. `backward` receives
    /// d(loss)/d(value) (same shape as value) and returns one gradient per input, in order
    /// (nil allowed for inputs that need none; shapes must match the inputs). When gradients are
    /// disabled or no input requires one, `value` is returned untouched and nothing is captured.
    public static func record(_ value: Tensor, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        recordOwningGradient(value, inputs: inputs) { backward($0) }
    }

    /// `record(_:inputs:backward:)` for a backward that owns d(loss)/d(value) during the call:
    /// it may overwrite it in place (or drop it) where `hasUniqueStorage()` says nobody else holds
    /// its storage; where somebody does (a gradient shared with another node, such as the two
    /// inputs of `a + b`), it must leave the values alone. The tensor is dropped after the call.
    public static func recordOwningGradient(_ value: Tensor, inputs: [Tensor], backward: @escaping (inout Tensor) -> [Tensor?]) -> Tensor {
        guard recordsGradient(of: inputs) else { return value }
        var result = value
        result.node = GradNode(inputs: inputs.map(\.node), backward: backward, isLeaf: false)
        return result
    }

    /// Whether an op on `inputs` records a backward now: gradients are enabled and some input
    /// requires one. An op can skip work only its backward needs when this is false.
    public static func recordsGradient(of inputs: [Tensor]) -> Bool {
        GradientMode.isEnabled && inputs.contains(where: { $0.requiresGrad })
    }

    /// Back-propagates from this scalar (or from any tensor with an explicit `seed` gradient of
    /// its shape), accumulating into every leaf reachable through the graph.
    public func backward(seed: Tensor? = nil) {
        guard let root = node else { return }
        let seedGrad = seed ?? Tensor(shape: shape, repeating: 1)
        precondition(seedGrad.shape == shape || seedGrad.count == count, "seed gradient shape \(seedGrad.shape) does not match \(shape)")
        // Iterative depth-first post-order: graphs of deep networks would overflow a recursive walk.
        var order: [GradNode] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(GradNode, Int)] = [(root, 0)]
        visited.insert(ObjectIdentifier(root))
        while let (n, start) = stack.popLast() {
            var i = start
            var pushed = false
            while i < n.inputs.count {
                let child = n.inputs[i]
                i += 1
                if let c = child, c.backwardFn != nil || c.isLeaf, !visited.contains(ObjectIdentifier(c)) {
                    visited.insert(ObjectIdentifier(c))
                    stack.append((n, i))
                    stack.append((c, 0))
                    pushed = true
                    break
                }
            }
            if !pushed { order.append(n) }
        }
        root.accumulate(seedGrad.reshapedNoGrad(shape))
        withoutGradients {
            for n in order.reversed() {
                guard let fn = n.backwardFn, var g = n.grad else { continue }
                // The closure owns the gradient: unless it was shared on arrival, `g` holds the
                // only reference to its storage.
                n.grad = nil
                let grads = fn(&g)
                precondition(grads.count == n.inputs.count, "backward returned \(grads.count) gradients for \(n.inputs.count) inputs")
                for (input, gi) in zip(n.inputs, grads) {
                    if let input, let gi { input.accumulate(gi) }
                }
                // Release the closure (and what it captured); the gradient goes with `g`.
                n.backwardFn = nil
                n.inputs = []
            }
        }
    }

    // Small helpers used by the engine itself, never recorded.
    func reshapedNoGrad(_ s: [Int]) -> Tensor { Tensor(shape: s, storage: storage) }

    func addingNoGrad(_ other: Tensor) -> Tensor {
        precondition(other.count == count, "gradient of \(other.shape) accumulated into \(shape)")
        return Tensor(shape: shape) { out in
            let a = storage.pointer, b = other.storage.pointer
            Parallel.forRanges(count) { r in for i in r { out[i] = a[i] + b[i] } }
        }
    }

    /// `self += other` in the storage itself; the caller ensures nothing else holds it.
    func addInPlaceNoGrad(_ other: Tensor) {
        precondition(other.count == count, "gradient of \(other.shape) accumulated into \(shape)")
        let a = storage.pointer, b = other.storage.pointer
        Parallel.forRanges(count) { r in for i in r { a[i] += b[i] } }
    }
}
