import MorphoTensor

/// VoxelMorph's spatial transformer as a layer: resamples `[N, C, spatial...]` maps at
/// `p + flow(p)` with `flow` `[N, nd, spatial...]` in voxels (channel i displaces axis i),
/// zeros outside. Images and one-hot or probability maps are sampled linearly (differentiable
/// in both the map and the flow), label maps of class indices by the nearest voxel (so no new
/// label values appear; not differentiable). See `warp(_:_:mode:)`.
public final class SpatialTransformer: Module {
    public init() {}

    /// Linear warp of an image or probability map.
    public func callAsFunction(_ image: Tensor, flow: Tensor) -> Tensor { warp(image, flow, mode: .linear) }

    /// Nearest-voxel warp of a label map `[N, 1, spatial...]` (or any map whose values must be kept).
    public func warpLabels(_ labels: Tensor, flow: Tensor) -> Tensor { warp(labels, flow, mode: .nearest) }

    /// Linear warp of a one-hot map `[N, K, spatial...]`: the result is a soft segmentation
    /// whose channels still sum to 1 inside the volume (Dice on warped atlases).
    public func warpOneHot(_ oneHot: Tensor, flow: Tensor) -> Tensor { warp(oneHot, flow, mode: .linear) }
}
