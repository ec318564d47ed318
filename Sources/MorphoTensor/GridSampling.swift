import MorphoKernels

// VoxelMorph's spatial transformer and the scaling-and-squaring integration built on it
// (Balakrishnan et al. 2019, Dalca et al. 2019). Displacements are in voxels; channel i of a
// field displaces spatial axis i (2D: 0 = H (y), 1 = W (x); 3D: 0 = D (z), 1 = H, 2 = W).

/// How a warp reads between voxels.
public enum SamplingMode: Sendable {
    /// Bilinear (2D) / trilinear (3D): images, probability and one-hot maps. Differentiable.
    case linear
    /// The nearest voxel (half-to-even rounding, PyTorch's rule): label maps. Not differentiable.
    case nearest
}

/// `src` `[N, C, spatial...]` resampled at `p + flow(p)` for every voxel `p`, with `flow`
/// `[N, nd, spatial...]` in voxels. Voxel centres sit at integer coordinates (PyTorch's
/// `align_corners=True`) and samples outside the volume read zeros: VoxelMorph's
/// `SpatialTransformer`. A zero flow returns `src` unchanged.
///
/// `.linear` is differentiable with respect to both `src` and `flow` (the flow derivative is
/// one-sided at integer coordinates, as PyTorch's); `.nearest` returns a constant of the graph.
public func warp(_ src: Tensor, _ flow: Tensor, mode: SamplingMode = .linear) -> Tensor {
    let nd = src.rank - 2
    precondition(nd == 2 || nd == 3, "warp expects [N, C, H, W] or [N, C, D, H, W], got \(src.shape)")
    precondition(flow.shape == [src.shape[0], nd] + src.spatialShape,
                 "warp of \(src.shape) needs a flow of \([src.shape[0], nd] + src.spatialShape), got \(flow.shape)")
    let extent = SpatialExtent(src.spatialShape)
    let batch = src.shape[0], channels = src.shape[1]
    let out = Tensor(shape: src.shape) { out in
        switch mode {
        case .linear:
            warpLinear(src: src.storage.pointer, flow: flow.storage.pointer, into: out, batch: batch, channels: channels, extent: extent)
        case .nearest:
            warpNearest(src: src.storage.pointer, flow: flow.storage.pointer, into: out, batch: batch, channels: channels, extent: extent)
        }
    }
    guard mode == .linear else { return out }
    return Tensor.record(out, inputs: [src, flow]) { g in
        // The kernel overwrites both gradients, so their storage starts uninitialised.
        let dSrc = src.requiresGrad ? TensorStorage(uninitializedCount: src.count) : nil
        let dFlow = flow.requiresGrad ? TensorStorage(uninitializedCount: flow.count) : nil
        warpLinearBackward(src: src.storage.pointer, flow: flow.storage.pointer, cotangent: g.storage.pointer,
                           srcGrad: dSrc?.pointer, flowGrad: dFlow?.pointer,
                           batch: batch, channels: channels, extent: extent)
        return [dSrc.map { Tensor(shape: src.shape, storage: $0) }, dFlow.map { Tensor(shape: flow.shape, storage: $0) }]
    }
}

/// Integrates a stationary velocity field `velocity` `[N, nd, spatial...]` (voxels) into a
/// displacement by scaling and squaring (VoxelMorph's `VecInt`): v = velocity / 2^steps, then
/// `steps` times v ← v + warp(v, v). The result approximates the displacement of the flow's
/// exponential map, a diffeomorphism for smooth fields. `steps` 0 returns `velocity`; a zero
/// field integrates to zero. Differentiable.
public func integrate(_ velocity: Tensor, steps: Int = 7) -> Tensor {
    precondition(steps >= 0, "integrate needs steps >= 0, got \(steps)")
    precondition(velocity.rank >= 4 && velocity.shape[1] == velocity.rank - 2,
                 "integrate expects a field [N, nd, spatial...] with nd spatial axes, got \(velocity.shape)")
    if steps == 0 { return velocity }
    var v = velocity * (1 / Float(1 << steps))
    for _ in 0..<steps { v = v + warp(v, v) }
    return v
}

/// A displacement field `[N, nd, spatial...]` (voxels) resampled linearly to the spatial size
/// `size`, its component along axis i multiplied by size[i]/n[i] so that it still measures
/// voxels of the new grid: the half-resolution flow of `DisplacementNet` doubles in size and
/// in value. Grids are aligned as `resize` aligns them (`align_corners=False`: the centre of a
/// pooled voxel sits between its two children), which VoxelMorph's `ResizeTransform`
/// (`align_corners=True`) only approximates. Differentiable.
public func resizeDisplacement(_ flow: Tensor, to size: [Int]) -> Tensor {
    let nd = flow.rank - 2
    precondition(flow.shape[1] == nd && size.count == nd, "resizeDisplacement of \(flow.shape) to \(size): a field [N, \(nd), spatial...]")
    let factors = (0..<nd).map { Float(size[$0]) / Float(flow.shape[$0 + 2]) }
    let scale = Tensor(shape: [1, nd] + Array(repeating: 1, count: nd), data: factors)
    return resize(flow, to: size, mode: .linear) * scale
}
