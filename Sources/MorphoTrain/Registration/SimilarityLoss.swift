import MorphoLosses
import MorphoTensor

/// The image similarity a registration optimises (seed 002 / VoxelMorph).
public enum SimilarityKind: String, CaseIterable, Codable, Sendable {
    /// Local (windowed) squared normalised cross-correlation: robust to smooth intensity changes,
    /// the usual choice for same-modality brain MRI.
    case lcc
    /// Global normalised cross-correlation.
    case gcc
    /// Mean squared difference: only for images with the same intensity scale.
    case mse
    /// Mattes mutual information (`MutualInformation`, 32 bins, B-spline window): any
    /// intensity relation, so across contrasts and modalities.
    case mi
}

/// `L(fixed, warped)` for the configured similarity, lower is better, a 0-d differentiable
/// tensor. Images `[N, 1, spatial…]` on the same grid (`mse` and `mi` accept any `[N, …]`).
///
/// An optional `mask` (voxel weights, 0 or 1, the images' shape) restricts the similarity to a
/// region: `mi` leaves the masked-out voxels out of its histogram and `mse` averages over the
/// mask; `lcc` and `gcc` see both images multiplied by the mask (outside it both are 0, so it
/// contributes nothing that depends on the images, but windows straddling its edge see the zeros).
public struct SimilarityLoss: Sendable, Equatable {
    public var kind: SimilarityKind
    /// LCC window (odd, voxels per axis).
    public var window: Int
    /// Histogram bins of `mi`.
    public var bins: Int

    public init(kind: SimilarityKind = .lcc, window: Int = 9, bins: Int = 32) {
        precondition(window >= 1 && window % 2 == 1, "LCC window must be odd and positive")
        self.kind = kind
        self.window = window
        self.bins = bins
    }

    public func callAsFunction(_ fixed: Tensor, _ warped: Tensor, mask: Tensor? = nil) -> Tensor {
        guard let mask else {
            switch kind {
            case .lcc: return LocalNCC(window: window)(fixed, warped)
            case .gcc: return GlobalNCC()(fixed, warped)
            case .mse: return MeanSquaredError()(fixed, warped)
            case .mi: return MutualInformation(bins: bins)(fixed, warped)
            }
        }
        precondition(mask.count == fixed.count, "SimilarityLoss: mask \(mask.shape) does not fit \(fixed.shape)")
        let m = mask.reshaped(fixed.shape)
        switch kind {
        case .lcc: return LocalNCC(window: window)(fixed * m, warped * m)
        case .gcc: return GlobalNCC()(fixed * m, warped * m)
        case .mse:
            let total = mask.scalars.reduce(0, +)
            return ((fixed - warped).squared() * m).sum() * (1 / max(total, 1e-12))
        case .mi: return MutualInformation(bins: bins)(fixed, warped, mask: m)
        }
    }
}
