// Resizing by separable 1-D resampling, PyTorch `F.interpolate` semantics with
// `align_corners=False` (the default, and what `nn.Upsample(scale_factor=2, mode="trilinear")`
// uses): output voxel `j` of an axis resized from `n` to `m` voxels sits at source coordinate
// `(j + 0.5)·n/m − 0.5`, clamped below at 0; linear mode blends its two neighbours (the upper
// one clamped to `n − 1`), nearest mode takes `⌊j · n/m⌋` (clamped to `n − 1`), PyTorch's
// `nearest` (not `nearest-exact`). Bi/trilinear = the 1-D rule along each axis in turn.

/// Resizes every plane of `src` (`[planes, extent]`) to `dst` (`[planes, newExtent]`),
/// linear or nearest, as PyTorch `F.interpolate(size: newExtent.dims, align_corners=False)`.
/// Both extents must have the same rank. Used for `2×` upsampling in decoders, half-resolution
/// displacement fields and data preprocessing. Allocates intermediates for the axis passes.
public func resize(
    _ src: UnsafePointer<Float>, extent: SpatialExtent, into dst: UnsafeMutablePointer<Float>,
    newExtent: SpatialExtent, planes: Int, linear: Bool
) {
    precondition(extent.rank == newExtent.rank, "resize: rank \(extent.rank) → \(newExtent.rank)")
    // Axis passes W, then H, then D; each reads the previous pass's output.
    let steps = resizeSteps(from: extent, to: newExtent, linear: linear)
    var current = src
    var buffers: [UnsafeMutablePointer<Float>] = []
    defer { buffers.forEach { $0.deallocate() } }
    for (i, step) in steps.enumerated() {
        let target: UnsafeMutablePointer<Float>
        if i == steps.count - 1 {
            target = dst
        } else {
            target = .allocate(capacity: planes * step.outer * step.table.count * step.inner)
            buffers.append(target)
        }
        resamplePass(current, target, outer: planes * step.outer, nIn: step.nIn, inner: step.inner, table: step.table)
        current = UnsafePointer(target)
    }
    if steps.isEmpty { dst.update(from: src, count: planes * extent.count) }
}

/// Backward (adjoint) of `resize`: scatters `gradOut` (`[planes, newExtent]`) back onto
/// `gradIn` (`[planes, extent]`, overwritten) with the same weights, axis passes in reverse.
public func resizeBackward(
    _ gradOut: UnsafePointer<Float>, newExtent: SpatialExtent, into gradIn: UnsafeMutablePointer<Float>,
    extent: SpatialExtent, planes: Int, linear: Bool
) {
    precondition(extent.rank == newExtent.rank, "resizeBackward: rank \(extent.rank) → \(newExtent.rank)")
    let steps = resizeSteps(from: extent, to: newExtent, linear: linear)
    var current = gradOut
    var buffers: [UnsafeMutablePointer<Float>] = []
    defer { buffers.forEach { $0.deallocate() } }
    for (i, step) in steps.enumerated().reversed() {
        let target: UnsafeMutablePointer<Float>
        if i == 0 {
            target = gradIn
        } else {
            target = .allocate(capacity: planes * step.outer * step.nIn * step.inner)
            buffers.append(target)
        }
        resamplePassAdjoint(current, target, outer: planes * step.outer, nIn: step.nIn, inner: step.inner, table: step.table)
        current = UnsafePointer(target)
    }
    if steps.isEmpty { gradIn.update(from: gradOut, count: planes * extent.count) }
}

/// The extent `2×` larger along every spatial axis (D only for rank 3).
public func upsampledExtent(_ extent: SpatialExtent) -> SpatialExtent {
    extent.rank == 3 ? SpatialExtent(d: 2 * extent.d, h: 2 * extent.h, w: 2 * extent.w)
                     : SpatialExtent(h: 2 * extent.h, w: 2 * extent.w)
}

/// `2×` upsampling, `nn.Upsample(scale_factor=2, mode="nearest" | "bilinear"/"trilinear")` with
/// `align_corners=False`: `resize` to `upsampledExtent(extent)`.
public func upsample2x(
    _ src: UnsafePointer<Float>, extent: SpatialExtent, into dst: UnsafeMutablePointer<Float>, planes: Int, linear: Bool
) {
    resize(src, extent: extent, into: dst, newExtent: upsampledExtent(extent), planes: planes, linear: linear)
}

/// Backward of `upsample2x`: `gradOut` is `[planes, upsampledExtent(extent)]`, `gradIn`
/// `[planes, extent]` (overwritten).
public func upsample2xBackward(
    _ gradOut: UnsafePointer<Float>, into gradIn: UnsafeMutablePointer<Float>, extent: SpatialExtent, planes: Int, linear: Bool
) {
    resizeBackward(gradOut, newExtent: upsampledExtent(extent), into: gradIn, extent: extent, planes: planes, linear: linear)
}

// MARK: - Implementation

/// Where output index `j` of one axis reads: `w0·in[i0] + w1·in[i1]`.
struct ResampleTap {
    var i0: Int, i1: Int
    var w0: Float, w1: Float
}

/// PyTorch's per-axis index rule (`area_pixel_compute_source_index` / `nearest_idx`), in float
/// arithmetic as PyTorch's CPU kernels use for float tensors.
func resampleTable(from n: Int, to m: Int, linear: Bool) -> [ResampleTap] {
    let scale = Float(n) / Float(m)
    return (0..<m).map { j in
        if !linear {
            let i = m == n ? j : (m == 2 * n ? j >> 1 : min(Int((Float(j) * scale).rounded(.down)), n - 1))
            return ResampleTap(i0: i, i1: i, w0: 1, w1: 0)
        }
        let s = max(scale * (Float(j) + 0.5) - 0.5, 0)
        let i0 = Int(s)  // s ≥ 0: truncation is floor
        let i1 = i0 + (i0 < n - 1 ? 1 : 0)
        let l1 = s - Float(i0)
        return ResampleTap(i0: i0, i1: i1, w0: 1 - l1, w1: l1)
    }
}

/// One axis pass of a resize: data `[outer, nIn, inner]` → `[outer, table.count, inner]`.
struct ResizeStep {
    var outer: Int, nIn: Int, inner: Int
    var table: [ResampleTap]
}

/// The axis passes that change size, in the order W, H, D, each with the layout of its input
/// (sizes of axes already resized are the new ones). Outer counts exclude `planes`.
func resizeSteps(from a: SpatialExtent, to b: SpatialExtent, linear: Bool) -> [ResizeStep] {
    var steps: [ResizeStep] = []
    if a.w != b.w { steps.append(ResizeStep(outer: a.d * a.h, nIn: a.w, inner: 1, table: resampleTable(from: a.w, to: b.w, linear: linear))) }
    if a.h != b.h { steps.append(ResizeStep(outer: a.d, nIn: a.h, inner: b.w, table: resampleTable(from: a.h, to: b.h, linear: linear))) }
    if a.d != b.d { steps.append(ResizeStep(outer: 1, nIn: a.d, inner: b.h * b.w, table: resampleTable(from: a.d, to: b.d, linear: linear))) }
    return steps
}

/// `dst[o, j, :] = w0[j]·src[o, i0[j], :] + w1[j]·src[o, i1[j], :]`.
private func resamplePass(
    _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, outer: Int, nIn: Int, inner: Int, table: [ResampleTap]
) {
    let m = table.count
    table.withUnsafeBufferPointer { t in
        if inner == 1 {
            Parallel.forRanges(outer, grain: max(1, 16384 / m)) { rows in
                for o in rows {
                    let s = src + o * nIn, d = dst + o * m
                    for j in 0..<m { d[j] = (t[j].w0 * s[t[j].i0]).addingProduct(t[j].w1, s[t[j].i1]) }
                }
            }
        } else {
            Parallel.forRanges(outer * m, grain: max(1, 16384 / inner)) { rows in
                for r in rows {
                    let o = r / m, j = r % m
                    let s = src + o * nIn * inner
                    rowBlend(dst + r * inner, s + t[j].i0 * inner, t[j].w0, s + t[j].i1 * inner, t[j].w1, inner)
                }
            }
        }
    }
}

/// Adjoint of `resamplePass`: `dst[o, i, :] = Σ_{j: i0[j]=i} w0[j]·src[o, j, :] + Σ_{j: i1[j]=i} w1[j]·src[o, j, :]`.
/// Parallel over `outer` only: the scatter along the axis stays in one thread.
private func resamplePassAdjoint(
    _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, outer: Int, nIn: Int, inner: Int, table: [ResampleTap]
) {
    let m = table.count
    table.withUnsafeBufferPointer { t in
        if inner == 1 {
            Parallel.forRanges(outer, grain: max(1, 16384 / m)) { rows in
                for o in rows {
                    let s = src + o * m, d = dst + o * nIn
                    d.update(repeating: 0, count: nIn)
                    for j in 0..<m {
                        d[t[j].i0] = d[t[j].i0].addingProduct(t[j].w0, s[j])
                        d[t[j].i1] = d[t[j].i1].addingProduct(t[j].w1, s[j])
                    }
                }
            }
        } else {
            // Chunks of the inner (contiguous) axis keep more than one thread busy when outer is 1.
            let chunk = min(inner, 2048)
            let chunks = (inner + chunk - 1) / chunk
            Parallel.forEach(outer * chunks) { item in
                let o = item / chunks, c0 = (item % chunks) * chunk, width = min(chunk, inner - c0)
                let s = src + o * m * inner + c0, d = dst + o * nIn * inner + c0
                for i in 0..<nIn { (d + i * inner).update(repeating: 0, count: width) }
                for j in 0..<m {
                    rowAxpy(d + t[j].i0 * inner, s + j * inner, t[j].w0, width)
                    rowAxpy(d + t[j].i1 * inner, s + j * inner, t[j].w1, width)
                }
            }
        }
    }
}
