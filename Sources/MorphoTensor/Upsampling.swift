import MorphoKernels

// Differentiable resizing of `[N, C, spatial...]` (2D or 3D), PyTorch `F.interpolate` with
// `align_corners=False`: output voxel j of an axis resized from n to m voxels samples source
// coordinate (j + 0.5)·n/m − 0.5 (linear, clamped to the volume) or ⌊j·n/m⌋ (nearest). The
// backward is the adjoint of the same interpolation.

/// `x` resized to the spatial size `size`, linear (bi/trilinear) or nearest.
public func resize(_ x: Tensor, to size: [Int], mode: SamplingMode = .linear) -> Tensor {
    precondition(x.rank == 4 || x.rank == 5, "resize expects [N, C, H, W] or [N, C, D, H, W], got \(x.shape)")
    precondition(size.count == x.rank - 2, "resize of \(x.shape) to \(size): one size per spatial axis")
    if size == x.spatialShape { return x }
    let extent = SpatialExtent(x.spatialShape), target = SpatialExtent(size)
    let planes = x.shape[0] * x.shape[1], linear = mode == .linear
    let y = Tensor(shape: Array(x.shape.prefix(2)) + size) { dst in
        MorphoKernels.resize(x.storage.pointer, extent: extent, into: dst, newExtent: target, planes: planes, linear: linear)
    }
    // The backward captures x's shape, not x (the adjoint needs no values).
    let inputShape = x.shape
    return Tensor.record(y, inputs: [x]) { g in
        [Tensor(shape: inputShape) { dx in
            resizeBackward(g.storage.pointer, newExtent: target, into: dx, extent: extent, planes: planes, linear: linear)
        }]
    }
}

/// 2× up-sampling along every spatial axis (`nn.Upsample(scale_factor=2)`): nearest repeats each
/// voxel (VoxelMorph's decoder), linear interpolates (`align_corners=False`).
public func upsample(_ x: Tensor, mode: SamplingMode = .nearest) -> Tensor {
    resize(x, to: x.spatialShape.map { 2 * $0 }, mode: mode)
}
