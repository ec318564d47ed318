import MorphoTensor

/// Cross-entropy on logits, PyTorch `CrossEntropyLoss(weight:)` with reduction mean:
///
///     L = Σ_v w_{y_v} · (−log softmax(x_v)_{y_v}) / Σ_v w_{y_v}
///
/// over every voxel v of every item (with no weights: the plain mean).
///
/// - logits: `[N, C, H, W]` or `[N, C, D, H, W]`, unnormalised.
/// - labels: `[N, ...]` or `[N, 1, ...]`, integral class indices in `0..<C` (stored as Float).
/// - Degenerate inputs: if every voxel's class has weight 0 the loss is 0/0 = NaN, as in PyTorch.
public struct CrossEntropyLoss: Sendable {
    /// One weight per class, or nil for the unweighted mean.
    public var classWeights: [Float]?

    public init(classWeights: [Float]? = nil) { self.classWeights = classWeights }

    public func callAsFunction(logits: Tensor, labels: Tensor) -> Tensor {
        softmaxRegionalLoss(logits: logits, labels: labels,
                            terms: RegionalTerms(lambdaCE: 1, classWeights: classWeights), "CrossEntropyLoss")
    }
}

/// Class-balanced cross-entropy (seed 001, `BalancedBCELoss`, generalised from 2 to C classes):
/// the weight of class c is `1 / (count(labels == c) + eps)`, counted over the whole batch, and the
/// loss is `CrossEntropyLoss(classWeights:)` with those weights. Every class present thus carries
/// the same total weight, however small its region.
///
/// - Shapes as `CrossEntropyLoss`.
/// - Degenerate inputs: a class absent from the batch gets weight `1/eps` but no voxel uses it, so
///   the loss stays finite; a batch with a single class reduces to the plain mean.
public struct BalancedCrossEntropyLoss: Sendable {
    public var eps: Float

    public init(eps: Float = 1e-6) { self.eps = eps }

    /// The per-class weights `1 / (count + eps)` for labels `[N, ...]` of `classes` classes,
    /// computed in Float32 like the seed (`torch.reciprocal(count.float() + eps)`).
    public func classWeights(labels: Tensor, classes: Int) -> [Float] {
        var counts = [Int](repeating: 0, count: classes)
        labels.withUnsafeBufferPointer { p in
            for v in p {
                let c = Int(v)
                precondition(Float(c) == v && c >= 0 && c < classes, "BalancedCrossEntropyLoss: label \(v) is not a class index in 0..<\(classes)")
                counts[c] += 1
            }
        }
        return counts.map { 1 / (Float($0) + eps) }
    }

    public func callAsFunction(logits: Tensor, labels: Tensor) -> Tensor {
        logits.preconditionImage("BalancedCrossEntropyLoss")
        let weights = classWeights(labels: labels, classes: logits.shape[1])
        return softmaxRegionalLoss(logits: logits, labels: labels,
                                   terms: RegionalTerms(lambdaCE: 1, classWeights: weights), "BalancedCrossEntropyLoss")
    }
}
