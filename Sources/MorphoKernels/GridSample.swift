// Grid sampling with a dense displacement field: VoxelMorph's `SpatialTransformer`.
//
// Layout (fixtures' FORMAT.md, "Layout conventions"): `src [N, C, D, H, W]` (2D: `[N, C, H, W]`,
// D = 1), `flow [N, rank, D, H, W]` in voxels, channel `i` displacing spatial axis `i` (2D: 0 = H,
// 1 = W; 3D: 0 = D, 1 = H, 2 = W). The output at voxel `p` samples `src` at `p + flow(p)` with
// `align_corners=True` semantics — voxel centres at integer coordinates, so VoxelMorph's
// normalise-to-[−1, 1]-and-back is the identity — and zero padding: each interpolation corner
// outside the volume contributes 0 (PyTorch `grid_sample(padding_mode="zeros")`).

/// The integer value of an integral float `f` with `|f| < 2²²`, without the range checks (and
/// their branches) of `Int(f)`: adding 1.5·2²³ puts `f` in the low mantissa bits.
@inline(__always) func integerValue(_ f: Float) -> Int {
    Int(Int32(bitPattern: (f + 12_582_912).bitPattern) - 0x4B40_0000)
}

/// One axis of a linear sample at coordinate `q` on an axis of `size` voxels: the two corner
/// indices (clamped into range so they can always be read) and their weights, zero for a
/// corner outside the volume. `valid0/1` are the weights' derivatives' magnitudes: ∂w0/∂q =
/// −valid0, ∂w1/∂q = +valid1.
struct LinearAxis {
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
        let i = integerValue(f)
        valid0 = UInt(bitPattern: i) < UInt(size) ? 1 : 0
        valid1 = UInt(bitPattern: i + 1) < UInt(size) ? 1 : 0
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
///   the slabs are summed at the end, so threads never write the same memory; this allocates
///   `Parallel.threads − 1` temporary buffers of `src`'s size.
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
        slabs.append(sg)
        for _ in 1..<workers { slabs.append(.allocate(capacity: total)) }
    }
    defer { for s in slabs.dropFirst() { s.deallocate() } }
    let slabList = slabs
    Parallel.forEach(workers) { worker in
        let lo = worker * g.rows / workers, hi = (worker + 1) * g.rows / workers
        let scatter = slabList.isEmpty ? nil : slabList[worker]
        scatter?.update(repeating: 0, count: total)
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
/// `grid_sample(mode="nearest")`'s rule, applied to `p + flow(p)` in float (VoxelMorph's
/// normalise/unnormalise round trip can move an exact .5 tie by an ulp, so exact ties are the
/// one place the two may pick different voxels). Shapes as `warpLinear`. Not differentiable.
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
struct WarpGeometry {
    let batch: Int, channels: Int, rank: Int
    let d: Int, h: Int, w: Int
    var volume: Int { d * h * w }
    var rows: Int { batch * d * h }

    init(batch: Int, channels: Int, extent: SpatialExtent) {
        precondition(batch > 0 && channels > 0, "warp: batch and channels must be positive")
        precondition(extent.rank == 3 || extent.d == 1, "warp: rank-2 data must have D = 1")
        // Corner indices go through `integerValue` (exact for |coordinate| < 2²²): cap the axes.
        precondition(max(extent.d, extent.h, extent.w) < 1 << 21, "warp: axis longer than 2²¹ voxels")
        self.batch = batch; self.channels = channels; rank = extent.rank
        d = extent.d; h = extent.h; w = extent.w
    }

    @inline(__always) func split(_ row: Int) -> (n: Int, z: Int, y: Int) {
        (row / (d * h), (row / h) % d, row % h)
    }
}

/// `a + t·(b − a)`, fused.
@inline(__always) private func lerp(_ a: Float, _ b: Float, _ t: Float) -> Float { a.addingProduct(t, b - a) }

/// One output row `(n, z, y)` of a warp: its flow rows and the sample coordinates of its
/// voxels. A sample is *interior* when all its corners are inside the volume (false for NaN);
/// nearly all samples of a registration field are, and they skip clamps and validity weights.
private struct WarpRow {
    let g: WarpGeometry, hasDepth: Bool
    let n: Int, z: Int, y: Int, offset: Int
    /// Flow rows of the z (3D only), y and x displacements.
    let fz: UnsafePointer<Float>, fy: UnsafePointer<Float>, fx: UnsafePointer<Float>
    let zf: Float, yf: Float, dMax: Float, hMax: Float, wMax: Float

    @inline(__always) init(_ row: Int, flow: UnsafePointer<Float>, g: WarpGeometry, hasDepth: Bool) {
        self.g = g; self.hasDepth = hasDepth
        (n, z, y) = g.split(row)
        offset = (z * g.h + y) * g.w
        fz = flow + n * g.rank * g.volume + offset
        fy = fz + (hasDepth ? g.volume : 0)
        fx = fy + g.volume
        zf = Float(z); yf = Float(y)
        dMax = Float(g.d - 1); hMax = Float(g.h - 1); wMax = Float(g.w - 1)
    }

    /// Fractional parts and the flat index of the lower corner of voxel `x`'s sample, if interior.
    @inline(__always) func interior(_ x: Int) -> (tz: Float, ty: Float, tx: Float, corner: Int)? {
        let qz = hasDepth ? zf + fz[x] : 0
        let qy = yf + fy[x], qx = Float(x) + fx[x]
        let inside = (!hasDepth || (qz >= 0 && qz < dMax)) && qy >= 0 && qy < hMax && qx >= 0 && qx < wMax
        guard _fastPath(inside) else { return nil }
        let z0 = qz.rounded(.down), y0 = qy.rounded(.down), x0 = qx.rounded(.down)
        let corner = (integerValue(z0) &* g.h &+ integerValue(y0)) &* g.w &+ integerValue(x0)
        return (qz - z0, qy - y0, qx - x0, corner)
    }

    /// General (zero-padded) axis parts of voxel `x`'s sample and the four row offsets
    /// `r[zy] = z·H·W + y·W` of its corners.
    @inline(__always) func boundary(_ x: Int) -> (az: LinearAxis, ay: LinearAxis, ax: LinearAxis, r: (Int, Int, Int, Int)) {
        let az = hasDepth ? LinearAxis(zf + fz[x], size: g.d) : LinearAxis(0, size: 1)
        let ay = LinearAxis(yf + fy[x], size: g.h), ax = LinearAxis(Float(x) + fx[x], size: g.w)
        let hw = g.h * g.w
        return (az, ay, ax, (az.i0 * hw + ay.i0 * g.w, az.i0 * hw + ay.i1 * g.w,
                             az.i1 * hw + ay.i0 * g.w, az.i1 * hw + ay.i1 * g.w))
    }
}

@inline(__always)
private func warpLinearRow(
    _ row: Int, src: UnsafePointer<Float>, flow: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
    g: WarpGeometry, hasDepth: Bool
) {
    let r = WarpRow(row, flow: flow, g: g, hasDepth: hasDepth)
    let hw = g.h &* g.w, w = g.w, volume = g.volume
    let src0 = src + r.n * g.channels * volume, out0 = out + r.n * g.channels * volume + r.offset

    @inline(__always) func voxel(_ x: Int) {
        guard let (tz, ty, tx, corner) = r.interior(x) else {
            warpLinearBoundary(r, x, src: src0, out: out0 + x)
            return
        }
        var s = src0 + corner, o = out0 + x
        for _ in 0..<g.channels {
            var v = lerp(lerp(s[0], s[1], tx), lerp(s[w], s[w &+ 1], tx), ty)
            if hasDepth {
                let s1 = s + hw
                v = lerp(v, lerp(lerp(s1[0], s1[1], tx), lerp(s1[w], s1[w &+ 1], tx), ty), tz)
            }
            o.pointee = v
            s += volume; o += volume
        }
    }

    for x in 0..<g.w { voxel(x) }
}

/// The forward sample of voxel `x` when a corner is outside the volume (zero padding), all
/// channels. `src`/`out` point at channel 0 of this batch item (`out` at the voxel).
@inline(never)
private func warpLinearBoundary(_ row: WarpRow, _ x: Int, src: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
    let (az, ay, ax, (r00, r01, r10, r11)) = row.boundary(x)
    for c in 0..<row.g.channels {
        let s = src + c * row.g.volume
        var v = az.w0 * (ay.w0 * (ax.w0 * s[r00 + ax.i0] + ax.w1 * s[r00 + ax.i1])
                       + ay.w1 * (ax.w0 * s[r01 + ax.i0] + ax.w1 * s[r01 + ax.i1]))
        if row.hasDepth {
            v += az.w1 * (ay.w0 * (ax.w0 * s[r10 + ax.i0] + ax.w1 * s[r10 + ax.i1])
                        + ay.w1 * (ax.w0 * s[r11 + ax.i0] + ax.w1 * s[r11 + ax.i1]))
        }
        out[c * row.g.volume] = v
    }
}

@inline(__always)
private func warpLinearBackwardRow(
    _ row: Int, src: UnsafePointer<Float>, flow: UnsafePointer<Float>, cot: UnsafePointer<Float>,
    srcGrad: UnsafeMutablePointer<Float>?, flowGrad: UnsafeMutablePointer<Float>?,
    g: WarpGeometry, hasDepth: Bool
) {
    let r = WarpRow(row, flow: flow, g: g, hasDepth: hasDepth)
    let hw = g.h &* g.w, w = g.w, volume = g.volume
    let planes0 = r.n * g.channels * volume
    let src0 = src + planes0, cot0 = cot + planes0 + r.offset
    let grad0 = srcGrad.map { $0 + planes0 }
    // Flow gradient rows of this (n, z, y): channel a at flowRow + a·volume.
    let flowRow = flowGrad.map { $0 + r.n * g.rank * volume + r.offset }

    @inline(__always) func storeFlowGrad(_ x: Int, _ dz: Float, _ dy: Float, _ dx: Float) {
        guard let o = flowRow.map({ $0 + x }) else { return }
        if hasDepth { o[0] = dz; o[volume] = dy; o[2 * volume] = dx } else { o[0] = dy; o[volume] = dx }
    }

    @inline(__always) func voxel(_ x: Int) {
        guard let (tz, ty, tx, corner) = r.interior(x) else {
            let (dz, dy, dx) = warpLinearBackwardBoundary(r, x, src: src0, cot: cot0 + x, srcGrad: grad0, wantFlow: flowGrad != nil)
            storeFlowGrad(x, dz, dy, dx)
            return
        }
        let uz = 1 - tz, uy = 1 - ty, ux = 1 - tx
        var dz: Float = 0, dy: Float = 0, dx: Float = 0
        for c in 0..<g.channels {
            let gOut = cot0[c &* volume &+ x]
            if let sg = grad0 {
                let t = sg + (c &* volume &+ corner)
                let g0 = hasDepth ? gOut * uz : gOut
                let g00 = g0 * uy, g01 = g0 * ty
                t[0] += g00 * ux; t[1] += g00 * tx; t[w] += g01 * ux; t[w &+ 1] += g01 * tx
                if hasDepth {
                    let t1 = t + hw, g1 = gOut * tz
                    let g10 = g1 * uy, g11 = g1 * ty
                    t1[0] += g10 * ux; t1[1] += g10 * tx; t1[w] += g11 * ux; t1[w &+ 1] += g11 * tx
                }
            }
            if flowGrad != nil {
                let s = src0 + (c &* volume &+ corner)
                // x-differences and x-lerps along rows y0/y1, then their y- and z-lerps.
                let dx00 = s[1] - s[0], dx01 = s[w &+ 1] - s[w]
                let c00 = s[0].addingProduct(tx, dx00), c01 = s[w].addingProduct(tx, dx01)
                var gx = lerp(dx00, dx01, ty), gy = c01 - c00
                if hasDepth {
                    let s1 = s + hw
                    let dx10 = s1[1] - s1[0], dx11 = s1[w &+ 1] - s1[w]
                    let c10 = s1[0].addingProduct(tx, dx10), c11 = s1[w].addingProduct(tx, dx11)
                    gx = lerp(gx, lerp(dx10, dx11, ty), tz)
                    gy = lerp(gy, c11 - c10, tz)
                    dz = dz.addingProduct(gOut, lerp(c10, c11, ty) - lerp(c00, c01, ty))
                }
                dy = dy.addingProduct(gOut, gy)
                dx = dx.addingProduct(gOut, gx)
            }
        }
        storeFlowGrad(x, dz, dy, dx)
    }

    for x in 0..<g.w { voxel(x) }
}

/// The backward pass at voxel `x` when a corner of its sample is outside the volume: general
/// weights with zero-padding validity. `src`/`srcGrad` point at channel 0 of this batch item,
/// `cot` at the voxel. Returns `∂L/∂q` summed over channels.
@inline(never)
private func warpLinearBackwardBoundary(
    _ row: WarpRow, _ x: Int, src: UnsafePointer<Float>, cot: UnsafePointer<Float>,
    srcGrad: UnsafeMutablePointer<Float>?, wantFlow: Bool
) -> (Float, Float, Float) {
    let (az, ay, ax, (r00, r01, r10, r11)) = row.boundary(x)
    let hasDepth = row.hasDepth, volume = row.g.volume
    var dz: Float = 0, dy: Float = 0, dx: Float = 0
    for c in 0..<row.g.channels {
        let gOut = cot[c * volume]
        if let sg = srcGrad {
            // Invalid corners have weight 0 and a clamped (valid) index: adding 0 is harmless.
            let t = sg + c * volume
            let g0 = gOut * az.w0
            t[r00 + ax.i0] += g0 * ay.w0 * ax.w0; t[r00 + ax.i1] += g0 * ay.w0 * ax.w1
            t[r01 + ax.i0] += g0 * ay.w1 * ax.w0; t[r01 + ax.i1] += g0 * ay.w1 * ax.w1
            if hasDepth {
                let g1 = gOut * az.w1
                t[r10 + ax.i0] += g1 * ay.w0 * ax.w0; t[r10 + ax.i1] += g1 * ay.w0 * ax.w1
                t[r11 + ax.i0] += g1 * ay.w1 * ax.w0; t[r11 + ax.i1] += g1 * ay.w1 * ax.w1
            }
        }
        if wantFlow {
            let s = src + c * volume
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
    return (dz, dy, dx)
}
