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
}

/// `L(fixed, warped)` for the configured similarity, lower is better, a 0-d differentiable
/// tensor. Images `[N, 1, spatial…]` on the same grid.
public struct SimilarityLoss: Sendable, Equatable {
    public var kind: SimilarityKind
    /// LCC window (odd, voxels per axis).
    public var window: Int

    public init(kind: SimilarityKind = .lcc, window: Int = 9) {
        precondition(window >= 1 && window % 2 == 1, "LCC window must be odd and positive")
        self.kind = kind
        self.window = window
    }

    public func callAsFunction(_ fixed: Tensor, _ warped: Tensor) -> Tensor {
        switch kind {
        case .lcc: return LocalNCC(window: window)(fixed, warped)
        case .gcc: return GlobalNCC()(fixed, warped)
        case .mse: return MeanSquaredError()(fixed, warped)
        }
    }
}
