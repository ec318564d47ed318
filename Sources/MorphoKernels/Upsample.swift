// Resizing by separable 1-D resampling, PyTorch `F.interpolate` semantics with
// `align_corners=False` (the default, and what `nn.Upsample(scale_factor=2, mode="trilinear")`
// uses): output voxel `j` of an axis resized from `n` to `m` voxels sits at source coordinate
// `(j + 0.5)·n/m − 0.5`, clamped below at 0; linear mode blends its two neighbours (the upper
// one clamped to `n − 1`), nearest mode takes `⌊j · n/m⌋` (clamped to `n − 1`), PyTorch's
// `nearest` (not `nearest-exact`). Bi/trilinear = the 1-D rule along each axis in turn.

/// Resizes every plane of `src` (`[planes, extent]`) to `dst` (`[planes, newExtent]`),
/// linear or nearest, as PyTorch `F.interpolate(size: newExtent.dims, align_corners=False)`.
/// Both extents must have the same rank. Used for `2×` upsampling in decoders, half-resolution
/// displacement fields and data preprocessing.
///
/// Fused per output slice: each thread resizes the (one or two) source slices an output slice
/// blends in W and H inside its own scratch, keeping the last two so consecutive output slices
/// reuse them; the volume is read once and written once.
public func resize(
    _ src: UnsafePointer<Float>, extent a: SpatialExtent, into dst: UnsafeMutablePointer<Float>,
    newExtent b: SpatialExtent, planes: Int, linear: Bool
) {
    precondition(a.rank == b.rank, "resize: rank \(a.rank) → \(b.rank)")
    let tables = ResizeTables(from: a, to: b, linear: linear)
    let inSlice = a.h * a.w, outSlice = b.h * b.w
    Parallel.forRanges(planes * b.d, grain: max(1, 32768 / outSlice)) { range in
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: a.h * b.w)
        let cache = [UnsafeMutablePointer<Float>.allocate(capacity: outSlice), .allocate(capacity: outSlice)]
        defer { rows.deallocate(); cache.forEach { $0.deallocate() } }
        var tags = [-1, -1]  // which source slice (plane · D + z) each cache buffer holds
        /// Source slice `tag` resized in W and H, computed unless cached; never evicts `keep`.
        func resized(_ tag: Int, keep: Int) -> UnsafePointer<Float> {
            if let k = tags.firstIndex(of: tag) { return UnsafePointer(cache[k]) }
            let k = tags[0] == keep ? 1 : 0
            tables.resizeSlice(src + tag * inSlice, into: cache[k], rows: rows)
            tags[k] = tag
            return UnsafePointer(cache[k])
        }
        tables.d.withUnsafeBufferPointer { td in
            for item in range {
                let p = item / b.d, tap = td[item % b.d]
                let t0 = p * a.d + tap.i0, t1 = p * a.d + tap.i1
                let out = dst + item * outSlice
                let s0 = resized(t0, keep: t1)
                if tap.w1 == 0 || t1 == t0 {
                    rowScale(out, s0, tap.w0 + (t1 == t0 ? tap.w1 : 0), outSlice)
                } else {
                    rowBlend(out, s0, tap.w0, resized(t1, keep: t0), tap.w1, outSlice)
                }
            }
        }
    }
}

/// Backward (adjoint) of `resize`: scatters `gradOut` (`[planes, newExtent]`) back onto
/// `gradIn` (`[planes, extent]`, overwritten) with the same weights. Fused per input slice:
/// gather the output slices that read it (D), then the H and W adjoints in scratch.
public func resizeBackward(
    _ gradOut: UnsafePointer<Float>, newExtent b: SpatialExtent, into gradIn: UnsafeMutablePointer<Float>,
    extent a: SpatialExtent, planes: Int, linear: Bool
) {
    precondition(a.rank == b.rank, "resizeBackward: rank \(a.rank) → \(b.rank)")
    let tables = ResizeTables(from: a, to: b, linear: linear)
    let inSlice = a.h * a.w, outSlice = b.h * b.w
    // For each source slice z, the output slices that read it and with which weight.
    var readers = [[(j: Int, weight: Float)]](repeating: [], count: a.d)
    for (j, tap) in tables.d.enumerated() {
        if tap.w0 != 0 { readers[tap.i0].append((j, tap.w0)) }
        if tap.w1 != 0 { readers[tap.i1].append((j, tap.w1)) }
    }
    Parallel.forRanges(planes * a.d, grain: max(1, 32768 / outSlice)) { range in
        let acc = UnsafeMutablePointer<Float>.allocate(capacity: outSlice)
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: a.h * b.w)
        defer { acc.deallocate(); rows.deallocate() }
        for item in range {
            let p = item / a.d, list = readers[item % a.d]
            let out = gradIn + item * inSlice
            guard let first = list.first else { out.update(repeating: 0, count: inSlice); continue }
            let g = gradOut + p * b.d * outSlice
            rowScale(acc, g + first.j * outSlice, first.weight, outSlice)
            for r in list.dropFirst() { rowAxpy(acc, g + r.j * outSlice, r.weight, outSlice) }
            tables.resizeSliceAdjoint(acc, into: out, rows: rows)
        }
    }
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

/// The three axis tables of one resize and the per-slice W/H passes.
struct ResizeTables {
    let a: SpatialExtent, b: SpatialExtent
    let d: [ResampleTap], h: [ResampleTap], w: [ResampleTap]

    init(from a: SpatialExtent, to b: SpatialExtent, linear: Bool) {
        self.a = a; self.b = b
        d = resampleTable(from: a.d, to: b.d, linear: linear)
        h = resampleTable(from: a.h, to: b.h, linear: linear)
        w = resampleTable(from: a.w, to: b.w, linear: linear)
    }

    /// One source slice `[a.h, a.w]` → `[b.h, b.w]`: W pass into `rows` (`[a.h, b.w]`), then
    /// the H pass as whole-row blends.
    func resizeSlice(_ src: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: UnsafeMutablePointer<Float>) {
        let (ah, aw, bh, bw) = (a.h, a.w, b.h, b.w)
        var wide = src
        if aw != bw {
            w.withUnsafeBufferPointer { t in
                for y in 0..<ah {
                    let s = src + y * aw, r = rows + y * bw
                    for j in 0..<bw { r[j] = (t[j].w0 * s[t[j].i0]).addingProduct(t[j].w1, s[t[j].i1]) }
                }
            }
            wide = UnsafePointer(rows)
        }
        h.withUnsafeBufferPointer { t in
            for j in 0..<bh {
                rowBlend(out + j * bw, wide + t[j].i0 * bw, t[j].w0, wide + t[j].i1 * bw, t[j].w1, bw)
            }
        }
    }

    /// Adjoint of `resizeSlice`: `[b.h, b.w]` → `[a.h, a.w]` (overwritten), H adjoint into
    /// `rows` (or straight into `out` when W is unchanged), then the W adjoint per row.
    func resizeSliceAdjoint(_ g: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: UnsafeMutablePointer<Float>) {
        let (ah, aw, bh, bw) = (a.h, a.w, b.h, b.w)
        let wide = aw == bw ? out : rows
        wide.update(repeating: 0, count: ah * bw)
        h.withUnsafeBufferPointer { t in
            for j in 0..<bh {
                rowAxpy(wide + t[j].i0 * bw, g + j * bw, t[j].w0, bw)
                if t[j].w1 != 0 { rowAxpy(wide + t[j].i1 * bw, g + j * bw, t[j].w1, bw) }
            }
        }
        guard aw != bw else { return }
        w.withUnsafeBufferPointer { t in
            for y in 0..<ah {
                let r = rows + y * bw, o = out + y * aw
                o.update(repeating: 0, count: aw)
                for j in 0..<bw {
                    o[t[j].i0] = o[t[j].i0].addingProduct(t[j].w0, r[j])
                    o[t[j].i1] = o[t[j].i1].addingProduct(t[j].w1, r[j])
                }
            }
        }
    }
}
