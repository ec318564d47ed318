// Grid sampling with a dense displacement field: VoxelMorph's `SpatialTransformer`.
//
// Layout (fixtures' FORMAT.md, "Layout conventions"): `src [N, C, D, H, W]` (2D: `[N, C, H, W]`,
// D = 1), `flow [N, rank, D, H, W]` in voxels, channel `i` displacing spatial axis `i` (2D: 0 = H,
// 1 = W; 3D: 0 = D, 1 = H, 2 = W). The output at voxel `p` samples `src` at `p + flow(p)` with
// `align_corners=True` semantics — voxel centres at integer coordinates, so VoxelMorph's
// normalise-to-[−1, 1]-and-back is the identity — and zero padding: each interpolation corner
// outside the volume contributes 0 (PyTorch `grid_sample(padding_mode="zeros")`).

/// One axis of a linear sample at coordinate `q` on an axis of `size` voxels: the two corner
/// indices (clamped into range so they can always be read) and their weights, zero for a
/// corner outside the volume. `valid0/1` are the weights' derivatives' magnitudes: ∂w0/∂q =
/// −valid0, ∂w1/∂q = +valid1.
@usableFromInline struct LinearAxis {
    var i0: Int, i1: Int
    var w0: Float, w1: Float
    var valid0: Float, valid1: Float

    @inline(__always) init(_ q: Float, size: Int) {
        // Far-outside (and NaN) coordinates are clamped to a spot whose corners are all
        // outside: the sample is 0 and the float → Int conversion cannot trap.
        let hi = Float(size + 1)
        let qc = q > -2 ? (q < hi ? q : hi) : -2
        let f = qc.rounded(.down)
        let t = qc - f
        let i = Int(f)
        valid0 = i >= 0 && i < size ? 1 : 0
        valid1 = i + 1 >= 0 && i + 1 < size ? 1 : 0
        i0 = min(max(i, 0), size - 1)
        i1 = min(max(i + 1, 0), size - 1)
        w0 = (1 - t) * valid0
        w1 = t * valid1
    }
}

/// Linear (bilinear for rank 2, trilinear for rank 3) warp:
/// `out[n, c, p] = src[n, c](p + flow[n, :, p])`, zero outside.
///
/// - Parameters:
///   - src: `[batch, channels, D, H, W]`; `out` has the same shape.
///   - flow: `[batch, extent.rank, D, H, W]` displacements in voxels.
///   - extent: spatial size; `rank` 2 means `[H, W]` data with `D = 1` and a two-channel flow.
/// Runs on `Parallel.threads` threads over rows of the output.
public func warpLinear(
    src: UnsafePointer<Float>, flow: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
    batch: Int, channels: Int, extent: SpatialExtent
) {
    let g = WarpGeometry(batch: batch, channels: channels, extent: extent)
    Parallel.forRanges(g.rows, grain: max(1, 8192 / g.w)) { rows in
        for row in rows {
            if g.rank == 3 {
                warpLinearRow(row, src: src, flow: flow, out: out, g: g, hasDepth: true)
            } else {
                warpLinearRow(row, src: src, flow: flow, out: out, g: g, hasDepth: false)
            }
        }
    }
}

/// Backward pass of `warpLinear` for the cotangent `cot` (`∂L/∂out`, shape of `out`):
///
/// - `srcGrad[n, c, s] = Σ_p cot[n, c, p] · w_s(p)` — the transpose of the interpolation, a
///   scatter-add. Each worker scatters into its own slab (worker 0 into `srcGrad` itself), and
///   the slabs are summed at the end, so threads never write the same memory.
/// - `flowGrad[n, a, p] = Σ_c cot[n, c, p] · ∂src[n, c](q)/∂q_a` at `q = p + flow(p)`, the
///   derivative of the interpolation weights (one-sided at integer coordinates, as PyTorch).
///
/// Pass `nil` for a gradient that is not needed. Both are overwritten, not accumulated into.
public func warpLinearBackward(
    src: UnsafePointer<Float>, flow: UnsafePointer<Float>, cotangent cot: UnsafePointer<Float>,
    srcGrad: UnsafeMutablePointer<Float>?, flowGrad: UnsafeMutablePointer<Float>?,
    batch: Int, channels: Int, extent: SpatialExtent
) {
    let g = WarpGeometry(batch: batch, channels: channels, extent: extent)
    if srcGrad == nil && flowGrad == nil { return }
    let total = batch * channels * g.volume
    let workers = max(1, min(Parallel.threads, g.rows / max(1, 4096 / g.w)))
    // Private scatter targets for workers 1...; worker 0 scatters straight into srcGrad.
    var slabs: [UnsafeMutablePointer<Float>] = []
    if let sg = srcGrad {
        sg.update(repeating: 0, count: total)
        slabs.append(sg)
        for _ in 1..<workers {
            let s = UnsafeMutablePointer<Float>.allocate(capacity: total)
            s.update(repeating: 0, count: total)
            slabs.append(s)
        }
    }
    defer { for s in slabs.dropFirst() { s.deallocate() } }
    let slabList = slabs
    Parallel.forEach(workers) { worker in
        let lo = worker * g.rows / workers, hi = (worker + 1) * g.rows / workers
        let scatter = slabList.isEmpty ? nil : slabList[worker]
        for row in lo..<hi {
            if g.rank == 3 {
                warpLinearBackwardRow(row, src: src, flow: flow, cot: cot, srcGrad: scatter, flowGrad: flowGrad,
                                      g: g, hasDepth: true)
            } else {
                warpLinearBackwardRow(row, src: src, flow: flow, cot: cot, srcGrad: scatter, flowGrad: flowGrad,
                                      g: g, hasDepth: false)
            }
        }
    }
    if workers > 1, let sg = srcGrad {
        Parallel.forRanges(total) { r in
            for s in slabList.dropFirst() { rowAdd(sg + r.lowerBound, s + r.lowerBound, r.count) }
        }
    }
}

/// Nearest-neighbour warp for label maps: `out[n, c, p] = src[n, c][round(p + flow(p))]`, 0 when
/// the rounded voxel is outside. Rounding is half-to-even (`nearbyint`), PyTorch
/// `grid_sample(mode="nearest")`'s rule. Shapes as `warpLinear`. Not differentiable.
public func warpNearest(
    src: UnsafePointer<Float>, flow: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
    batch: Int, channels: Int, extent: SpatialExtent
) {
    let g = WarpGeometry(batch: batch, channels: channels, extent: extent)
    @inline(__always) func index(_ q: Float, _ size: Int) -> Int {
        let hi = Float(size)
        let qc = q > -1 ? (q < hi ? q : hi) : -1  // NaN → −1 (outside)
        let i = Int(qc.rounded(.toNearestOrEven))
        return i >= 0 && i < size ? i : -1
    }
    Parallel.forRanges(g.rows, grain: max(1, 8192 / g.w)) { rows in
        for row in rows {
            let (n, z, y) = g.split(row)
            let f = flow + n * g.rank * g.volume + (z * g.h + y) * g.w
            let hasDepth = g.rank == 3
            let fy = f + (hasDepth ? g.volume : 0), fx = fy + g.volume
            for x in 0..<g.w {
                let iz = hasDepth ? index(Float(z) + f[x], g.d) : 0
                let iy = index(Float(y) + fy[x], g.h), ix = index(Float(x) + fx[x], g.w)
                let inside = iz >= 0 && iy >= 0 && ix >= 0
                let at = (iz * g.h + iy) * g.w + ix
                let p = (z * g.h + y) * g.w + x
                for c in 0..<g.channels {
                    let plane = (n * g.channels + c) * g.volume
                    out[plane + p] = inside ? src[plane + at] : 0
                }
            }
        }
    }
}

// MARK: - Implementation

/// Sizes shared by the warp loops; rows are `(n, z, y)` lines of `W` output voxels.
@usableFromInline struct WarpGeometry {
    let batch: Int, channels: Int, rank: Int
    let d: Int, h: Int, w: Int
    var volume: Int { d * h * w }
    var rows: Int { batch * d * h }

    init(batch: Int, channels: Int, extent: SpatialExtent) {
        precondition(batch > 0 && channels > 0, "warp: batch and channels must be positive")
        precondition(extent.rank == 3 || extent.d == 1, "warp: rank-2 data must have D = 1")
        self.batch = batch; self.channels = channels; rank = extent.rank
        d = extent.d; h = extent.h; w = extent.w
    }

    @inline(__always) func split(_ row: Int) -> (n: Int, z: Int, y: Int) {
        (row / (d * h), (row / h) % d, row % h)
    }
}

/// The corners of one linear sample: axis parts and the four row offsets `(z, y)` → `z·H·W + y·W`.
@inline(__always)
private func corners(
    _ z: Int, _ y: Int, _ x: Int, _ f: UnsafePointer<Float>, _ g: WarpGeometry, hasDepth: Bool
) -> (az: LinearAxis, ay: LinearAxis, ax: LinearAxis) {
    let az = hasDepth ? LinearAxis(Float(z) + f[0], size: g.d) : LinearAxis(0, size: 1)
    let fyx = f + (hasDepth ? g.volume : 0)
    let ay = LinearAxis(Float(y) + fyx[0], size: g.h)
    let ax = LinearAxis(Float(x) + fyx[g.volume], size: g.w)
    return (az, ay, ax)
}

@inline(__always)
private func warpLinearRow(
    _ row: Int, src: UnsafePointer<Float>, flow: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
    g: WarpGeometry, hasDepth: Bool
) {
    let (n, z, y) = g.split(row)
    let rowOffset = (z * g.h + y) * g.w
    let f = flow + n * g.rank * g.volume + rowOffset
    let hw = g.h * g.w
    for x in 0..<g.w {
        let (az, ay, ax) = corners(z, y, x, f + x, g, hasDepth: hasDepth)
        let r00 = az.i0 * hw + ay.i0 * g.w, r01 = az.i0 * hw + ay.i1 * g.w
        let r10 = az.i1 * hw + ay.i0 * g.w, r11 = az.i1 * hw + ay.i1 * g.w
        for c in 0..<g.channels {
            let plane = (n * g.channels + c) * g.volume
            let s = src + plane
            var v = az.w0 * (ay.w0 * (ax.w0 * s[r00 + ax.i0] + ax.w1 * s[r00 + ax.i1])
                           + ay.w1 * (ax.w0 * s[r01 + ax.i0] + ax.w1 * s[r01 + ax.i1]))
            if hasDepth {
                v += az.w1 * (ay.w0 * (ax.w0 * s[r10 + ax.i0] + ax.w1 * s[r10 + ax.i1])
                            + ay.w1 * (ax.w0 * s[r11 + ax.i0] + ax.w1 * s[r11 + ax.i1]))
            }
            out[plane + rowOffset + x] = v
        }
    }
}

@inline(__always)
private func warpLinearBackwardRow(
    _ row: Int, src: UnsafePointer<Float>, flow: UnsafePointer<Float>, cot: UnsafePointer<Float>,
    srcGrad: UnsafeMutablePointer<Float>?, flowGrad: UnsafeMutablePointer<Float>?,
    g: WarpGeometry, hasDepth: Bool
) {
    let (n, z, y) = g.split(row)
    let rowOffset = (z * g.h + y) * g.w
    let f = flow + n * g.rank * g.volume + rowOffset
    let hw = g.h * g.w
    for x in 0..<g.w {
        let (az, ay, ax) = corners(z, y, x, f + x, g, hasDepth: hasDepth)
        let r00 = az.i0 * hw + ay.i0 * g.w, r01 = az.i0 * hw + ay.i1 * g.w
        let r10 = az.i1 * hw + ay.i0 * g.w, r11 = az.i1 * hw + ay.i1 * g.w
        var dz: Float = 0, dy: Float = 0, dx: Float = 0
        for c in 0..<g.channels {
            let plane = (n * g.channels + c) * g.volume
            let gOut = cot[plane + rowOffset + x]
            if let sg = srcGrad {
                let t = sg + plane
                let g0 = gOut * az.w0
                t[r00 + ax.i0] += g0 * ay.w0 * ax.w0; t[r00 + ax.i1] += g0 * ay.w0 * ax.w1
                t[r01 + ax.i0] += g0 * ay.w1 * ax.w0; t[r01 + ax.i1] += g0 * ay.w1 * ax.w1
                if hasDepth {
                    let g1 = gOut * az.w1
                    t[r10 + ax.i0] += g1 * ay.w0 * ax.w0; t[r10 + ax.i1] += g1 * ay.w0 * ax.w1
                    t[r11 + ax.i0] += g1 * ay.w1 * ax.w0; t[r11 + ax.i1] += g1 * ay.w1 * ax.w1
                }
            }
            if flowGrad != nil {
                let s = src + plane
                // Bilinear pieces of slice z0: along x at rows y0/y1, then their x-derivatives.
                let s000 = s[r00 + ax.i0], s001 = s[r00 + ax.i1], s010 = s[r01 + ax.i0], s011 = s[r01 + ax.i1]
                let lx00 = ax.w0 * s000 + ax.w1 * s001, lx01 = ax.w0 * s010 + ax.w1 * s011
                let dx00 = ax.valid1 * s001 - ax.valid0 * s000, dx01 = ax.valid1 * s011 - ax.valid0 * s010
                let plane0 = ay.w0 * lx00 + ay.w1 * lx01
                var gx = az.w0 * (ay.w0 * dx00 + ay.w1 * dx01)
                var gy = az.w0 * (ay.valid1 * lx01 - ay.valid0 * lx00)
                if hasDepth {
                    let s100 = s[r10 + ax.i0], s101 = s[r10 + ax.i1], s110 = s[r11 + ax.i0], s111 = s[r11 + ax.i1]
                    let lx10 = ax.w0 * s100 + ax.w1 * s101, lx11 = ax.w0 * s110 + ax.w1 * s111
                    let dx10 = ax.valid1 * s101 - ax.valid0 * s100, dx11 = ax.valid1 * s111 - ax.valid0 * s110
                    let plane1 = ay.w0 * lx10 + ay.w1 * lx11
                    gx += az.w1 * (ay.w0 * dx10 + ay.w1 * dx11)
                    gy += az.w1 * (ay.valid1 * lx11 - ay.valid0 * lx10)
                    dz += gOut * (az.valid1 * plane1 - az.valid0 * plane0)
                }
                dy += gOut * gy
                dx += gOut * gx
            }
        }
        if let fg = flowGrad {
            let o = fg + n * g.rank * g.volume + rowOffset + x
            if hasDepth {
                o[0] = dz; o[g.volume] = dy; o[2 * g.volume] = dx
            } else {
                o[0] = dy; o[g.volume] = dx
            }
        }
    }
}
