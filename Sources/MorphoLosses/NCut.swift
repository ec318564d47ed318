import MorphoTensor

/// Soft normalised-cut loss for unsupervised segmentation (seed 001 `NCutLoss2D`, W-Net: Xia &
/// Kulis 2017), **as the seed executes it**: for every class k, with p_k the class probabilities,
///
///     μ_k   = mean_v(I·p_k) / (mean_v(p_k) + 1e-5)              per item (and image channel)
///     d_k   = Σ_channels (I − μ_k)²                              per voxel
///     w_k   = exp(−d_k² / σ₂²)                                   (the seed squares d once more)
///     L     = K − Σ_k | Σ p_k²·w_k / (Σ p_k·w_k + 1e-6) |        sums over all items and voxels
///
/// The seed builds a spatial Gaussian kernel (radius 5, σ₁ = 4) but its convolution is commented
/// out, so it has no effect; it is therefore not a parameter here.
///
/// - probs: `[N, K, H, W]` or `[N, K, D, H, W]`, softmax output (rows sum to 1).
/// - image: `[N, C, ...]` raw intensities (C usually 1), same spatial shape.
/// - Reduction: the spatial means run over all spatial axes (H, W in 2D; D, H, W in 3D).
/// - Degenerate inputs: a class with zero probability everywhere gives μ = 0 (thanks to the
///   1e-5) and a 0/(0 + 1e-6) = 0 ratio, so the loss stays finite. Composed from differentiable
///   ops, so its gradient includes the dependence of μ_k on p_k.
public struct SoftNCutLoss: Sendable {
    /// Standard deviation of the intensity affinity, in intensity units.
    public var sigma2: Float

    public init(sigma2: Float = 10) { self.sigma2 = sigma2 }

    public func callAsFunction(probs: Tensor, image: Tensor) -> Tensor {
        probs.preconditionImage("SoftNCutLoss")
        precondition(image.rank == probs.rank && image.shape[0] == probs.shape[0] && image.spatialShape == probs.spatialShape,
                     "SoftNCutLoss: image \(image.shape) does not match probs \(probs.shape)")
        let classes = probs.shape[1]
        let axes = Array(2..<probs.rank)
        var ratios: Tensor?
        for k in 0..<classes {
            let p = probs.slice(axis: 1, k ..< k + 1)
            let mean = (image * p).mean(axes: axes, keepDims: true) / (p.mean(axes: axes, keepDims: true) + 1e-5)
            let diff = (image - mean).squared().sum(axes: [1], keepDims: true)
            let weights = (diff.squared() * (-1 / (sigma2 * sigma2))).exp()
            let numerator = (p * p * weights).sum()
            let denominator = (p * weights).sum()
            let ratio = (numerator / (denominator + 1e-6)).abs()
            ratios = ratios.map { $0 + ratio } ?? ratio
        }
        return Float(classes) - ratios!
    }
}
