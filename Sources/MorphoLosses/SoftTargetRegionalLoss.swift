import MorphoTensor

/// The regional losses of `Dice.swift` / `CrossEntropy.swift` against a **soft** target: a
/// probability map per class instead of class indices (e.g. one-hot labels warped linearly by a
/// displacement field, whose voxels on a moved boundary hold class fractions). With one-hot
/// targets every value equals that of the hard loss of the same kind.
///
///     p = softmax(logits), T = targets, both `[N, C, spatial…]`, Σ_c T_c = 1 at every voxel
///     Dice = mean_{n, c ∈ kept} [1 − (2 Σ_v p·T + ε) / (Σ_v p + Σ_v T + ε)]      (ε = smooth, 1e-5)
///     CE   = −(1 / (N·|Ω|)) Σ_{n, v} Σ_c T_c · log p_c
///     balanced CE = Σ_{n, v} Σ_c w_c T_c (−log p_c) / Σ_{n, v} Σ_c w_c T_c,   w_c = 1 / (Σ_{n, v} T_c + eps)
///     L    = λ_dice · Dice + λ_ce · (balanced ? balanced CE : CE)
///
/// with `kept` all classes, or 1..<C without the background (MONAI's `DiceLoss` drops channel 0
/// after the softmax, as `SoftDiceLoss` does). The class weights of the balanced CE are constants
/// of the step (as `BalancedCrossEntropyLoss` counts labels). Composed of differentiable tensor
/// ops: the gradient reaches the logits (and the targets, should they require one).
///
/// - logits: `[N, C, H, W]` or `[N, C, D, H, W]`, unnormalised; targets: the same shape.
public struct SoftTargetRegionalLoss: Sendable {
    public var lambdaDice: Float
    public var lambdaCE: Float
    public var includeBackground: Bool
    /// The CE term with class weights `1 / (Σ T_c + eps)` (`BalancedCrossEntropyLoss`).
    public var balanced: Bool
    public var smooth: Float
    public var eps: Float

    public init(lambdaDice: Float = 1, lambdaCE: Float = 1, includeBackground: Bool = true, balanced: Bool = false,
                smooth: Float = 1e-5, eps: Float = 1e-6) {
        self.lambdaDice = lambdaDice
        self.lambdaCE = lambdaCE
        self.includeBackground = includeBackground
        self.balanced = balanced
        self.smooth = smooth
        self.eps = eps
    }

    public func callAsFunction(logits: Tensor, targets: Tensor) -> Tensor {
        logits.preconditionImage("SoftTargetRegionalLoss")
        precondition(logits.shape == targets.shape, "SoftTargetRegionalLoss: logits \(logits.shape) and targets \(targets.shape) differ")
        let c = logits.shape[1]
        var total: Tensor?
        if lambdaDice != 0 {
            let p = logits.softmax()
            let kept = includeBackground ? 0..<c : 1..<c
            let (a, b) = kept.count == c ? (p, targets) : (p.slice(axis: 1, kept), targets.slice(axis: 1, kept))
            let dice = ProbabilityDiceLoss(smooth: smooth)(a, b)
            total = lambdaDice == 1 ? dice : dice * lambdaDice
        }
        if lambdaCE != 0 {
            let logP = logits.logSoftmax()
            let ce: Tensor
            if balanced {
                // w_c from the targets' class masses, a constant [1, C, 1, …].
                let mass = withoutGradients { targets.detached().sum(axes: [0] + Array(2..<targets.rank), keepDims: true) }
                let w = Tensor(shape: mass.shape, data: mass.scalars.map { 1 / ($0 + eps) })
                let weighted = targets * w
                ce = -(weighted * logP).sum() / weighted.detached().sum()
            } else {
                ce = -(targets * logP).sum() * (1 / Float(logits.shape[0] * logits.spatialCount))
            }
            let term = lambdaCE == 1 ? ce : ce * lambdaCE
            total = total.map { $0 + term } ?? term
        }
        return total ?? Tensor(scalar: 0)
    }
}
