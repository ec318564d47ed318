// The Sobel gradient and the Sobel divergence of `[planes, D, H, W]` volumes (2D: D = 1), each
// in one sweep. PRL (seed 000) applies every Sobel derivative of an image together: its
// gradient `(S_a ⋆ u)_a` and the divergence of a flux `Σ_a S_a ⋆ (g · x_a)`. Run as separate
// separable filters, a 3D gradient streams the volume through memory 6 times plus a pass per
// product and sum; here each z-slice builds its two depth-smoothed planes once in per-thread
// scratch and derives all components row by row, so the volume is read once and each output
// written once.
//
// Sobel of axis a (`SeparableKernel.sobel(axis:rank:)`): the derivative D = [-1, 0, 1] along a
// and the smoothing B = [1, 2, 1] along the other axes, zero padding, correlation (tap k reads
// offset k − 1). Axes: rank 3: 0 = D (z), 1 = H (y), 2 = W (x); rank 2: 0 = H, 1 = W.
// Adjoints: D is antisymmetric and B symmetric, so `S_aᵀ = −S_a`.

/// `outs[a] = S_a ⋆ src` for every axis a of `extent.rank`, and, when given,
/// `sumOfSquares = Σ_a outs[a]²`. Buffers `[planes, D, H, W]`; `outs` has `extent.rank` entries
/// and must not overlap `src`.
public func sobelGradient(
    _ src: UnsafePointer<Float>, into outs: [UnsafeMutablePointer<Float>], sumOfSquares: UnsafeMutablePointer<Float>?,
    planes: Int, extent: SpatialExtent
) {
    let (outZ, outY, outX) = axes(outs, extent, "sobelGradient")
    let (d, h, w) = (extent.d, extent.h, extent.w)
    let hw = h * w, volumetric = extent.rank == 3
    // 3D: out z = B_x(B_y(D_z u)), y = B_x(D_y(B_z u)), x = D_x(B_y(B_z u)); 2D: y, x alike without z.
    Parallel.forRanges(planes * d, grain: max(1, 16384 / hw)) { range in
        let scratch = SobelScratch(hw: hw, w: w, planes: volumetric ? 2 : 0)
        defer { scratch.deallocate() }
        let bz = volumetric ? scratch.plane(0) : nil, dz = volumetric ? scratch.plane(1) : nil
        let bb = scratch.row(0), db = scratch.row(1), bd = scratch.row(2)
        for slice in range {
            let z = slice % d, base = slice * hw
            let at = src + base
            // Depth smoothing B_z and derivative D_z of the slice (3D), or the slice itself (2D).
            let smooth: UnsafePointer<Float>
            if let bz, let dz {
                let below = z > 0 ? at - hw : scratch.zeros, above = z + 1 < d ? at + hw : scratch.zeros
                threeTap(bz, below, 1, at, 2, above, 1, hw)
                twoTap(dz, above, below, hw)
                smooth = UnsafePointer(bz)
            } else {
                smooth = at
            }
            for y in 0..<h {
                let up = y > 0 ? smooth + (y - 1) * w : scratch.zeros, row = smooth + y * w
                let down = y + 1 < h ? smooth + (y + 1) * w : scratch.zeros
                threeTap(bb + 1, up, 1, row, 2, down, 1, w)
                twoTap(db + 1, down, up, w)
                let o = base + y * w
                threeTap(outY + o, db, 1, db + 1, 2, db + 2, 1, w)
                twoTap(outX + o, bb + 2, bb, w)
                if let outZ, let dz {
                    let dzRow = UnsafePointer(dz) + y * w
                    let dzUp = y > 0 ? dzRow - w : scratch.zeros, dzDown = y + 1 < h ? dzRow + w : scratch.zeros
                    threeTap(bd + 1, dzUp, 1, dzRow, 2, dzDown, 1, w)
                    threeTap(outZ + o, bd, 1, bd + 1, 2, bd + 2, 1, w)
                }
                if let sumOfSquares {
                    sumOfSquaresRow(sumOfSquares + o, outZ.map { UnsafePointer($0 + o) }, outY + o, outX + o, w)
                }
            }
        }
    }
}

/// `out = Σ_a S_a ⋆ (g · fields[a])` over the axes of `extent.rank` (`g` nil: 1), the flux
/// divergence of PRL. Buffers `[planes, D, H, W]`; `out` must not overlap the inputs.
public func sobelDivergence(
    _ fields: [UnsafePointer<Float>], weight g: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>,
    planes: Int, extent: SpatialExtent
) {
    let (fz, fy, fx) = axes(fields, extent, "sobelDivergence")
    let (d, h, w) = (extent.d, extent.h, extent.w)
    let hw = h * w, volumetric = extent.rank == 3
    // 3D: out = D_x(B_y(B_z p_x)) + B_x(D_y(B_z p_y) + B_y(D_z p_z)) with p_a = g · x_a;
    // 2D: out = D_x(B_y p_x) + B_x(D_y p_y).
    Parallel.forRanges(planes * d, grain: max(1, 16384 / hw)) { range in
        let scratch = SobelScratch(hw: hw, w: w, planes: 3)
        defer { scratch.deallocate() }
        let px = scratch.plane(0), py = scratch.plane(1), pz = scratch.plane(2)
        let a = scratch.row(0), b = scratch.row(1)
        for slice in range {
            let z = slice % d, base = slice * hw
            if volumetric {
                let lo = z > 0 ? base - hw : nil, hi = z + 1 < d ? base + hw : nil
                depthWeighted(px, py, pz, fx, fy, fz!, g, base: base, below: lo, above: hi, count: hw)
            } else {
                product(px, fx + base, g.map { $0 + base }, hw)
                product(py, fy + base, g.map { $0 + base }, hw)
            }
            for y in 0..<h {
                let o = y * w
                let up = y > 0, down = y + 1 < h
                let xUp = up ? UnsafePointer(px) + o - w : scratch.zeros, xDown = down ? UnsafePointer(px) + o + w : scratch.zeros
                let yUp = up ? UnsafePointer(py) + o - w : scratch.zeros, yDown = down ? UnsafePointer(py) + o + w : scratch.zeros
                threeTap(a + 1, xUp, 1, px + o, 2, xDown, 1, w)
                twoTap(b + 1, yDown, yUp, w)
                if volumetric {
                    let zUp = up ? UnsafePointer(pz) + o - w : scratch.zeros, zDown = down ? UnsafePointer(pz) + o + w : scratch.zeros
                    threeTapAdd(b + 1, zUp, zDown, pz + o, w)
                }
                divergenceRow(out + base + o, a, b, w)
            }
        }
    }
}

/// The per-axis buffers `[z?, y, x]` of `extent.rank` entries as (z, y, x), z nil in 2D.
private func axes<P>(_ buffers: [P], _ extent: SpatialExtent, _ what: String) -> (z: P?, y: P, x: P) {
    precondition(buffers.count == extent.rank, "\(what): \(buffers.count) buffers for rank \(extent.rank)")
    return extent.rank == 3 ? (buffers[0], buffers[1], buffers[2]) : (nil, buffers[0], buffers[1])
}

/// Per-thread scratch: `planes` planes of `hw` floats, a zero plane, and three rows of `w + 2`
/// floats whose first and last entries stay 0 (the x padding).
private struct SobelScratch {
    let memory: UnsafeMutablePointer<Float>
    let hw: Int, rowStride: Int, planeCount: Int

    init(hw: Int, w: Int, planes: Int) {
        self.hw = hw
        rowStride = w + 2
        planeCount = planes
        let count = (planes + 1) * hw + 3 * rowStride
        memory = .allocate(capacity: count)
        memory.initialize(repeating: 0, count: count)
    }

    func plane(_ i: Int) -> UnsafeMutablePointer<Float> {
        precondition(i < planeCount)
        return memory + i * hw
    }
    var zeros: UnsafePointer<Float> { UnsafePointer(memory + planeCount * hw) }
    func row(_ i: Int) -> UnsafeMutablePointer<Float> { memory + (planeCount + 1) * hw + i * rowStride }
    func deallocate() { memory.deallocate() }
}

/// `dst[i] = a · p[i] + b · q[i] + c · r[i]`.
@inline(__always)
private func threeTap(
    _ dst: UnsafeMutablePointer<Float>, _ p: UnsafePointer<Float>, _ a: Float, _ q: UnsafePointer<Float>, _ b: Float,
    _ r: UnsafePointer<Float>, _ c: Float, _ n: Int
) {
    let va = Lanes(repeating: a), vb = Lanes(repeating: b), vc = Lanes(repeating: c)
    var i = 0
    while i + 16 <= n {
        storeLanes((va * loadLanes(p + i)).addingProduct(vb, loadLanes(q + i)).addingProduct(vc, loadLanes(r + i)), dst + i)
        i += 16
    }
    while i < n { dst[i] = (a * p[i]).addingProduct(b, q[i]).addingProduct(c, r[i]); i += 1 }
}

/// `dst[i] = plus[i] − minus[i]`: the derivative taps [-1, 0, 1].
@inline(__always)
private func twoTap(_ dst: UnsafeMutablePointer<Float>, _ plus: UnsafePointer<Float>, _ minus: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 16 <= n { storeLanes(loadLanes(plus + i) - loadLanes(minus + i), dst + i); i += 16 }
    while i < n { dst[i] = plus[i] - minus[i]; i += 1 }
}

/// `dst[i] += up[i] + 2 · mid[i] + down[i]`: adds the smoothing taps [1, 2, 1].
@inline(__always)
private func threeTapAdd(
    _ dst: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, _ down: UnsafePointer<Float>, _ mid: UnsafePointer<Float>,
    _ n: Int
) {
    let two = Lanes(repeating: 2)
    var i = 0
    while i + 16 <= n {
        storeLanes((loadLanes(dst + i) + loadLanes(up + i) + loadLanes(down + i)).addingProduct(two, loadLanes(mid + i)), dst + i)
        i += 16
    }
    while i < n { dst[i] += up[i] + down[i] + 2 * mid[i]; i += 1 }
}

/// `dst[i] = (z?[i])² + y[i]² + x[i]²`.
@inline(__always)
private func sumOfSquaresRow(
    _ dst: UnsafeMutablePointer<Float>, _ z: UnsafePointer<Float>?, _ y: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int
) {
    var i = 0
    while i + 16 <= n {
        let vy = loadLanes(y + i), vx = loadLanes(x + i)
        var s = (vy * vy).addingProduct(vx, vx)
        if let z { let vz = loadLanes(z + i); s = s.addingProduct(vz, vz) }
        storeLanes(s, dst + i)
        i += 16
    }
    while i < n {
        var s = y[i] * y[i] + x[i] * x[i]
        if let z { s += z[i] * z[i] }
        dst[i] = s
        i += 1
    }
}

/// `dst[i] = x[i] · g?[i]` (`g` nil: a copy).
@inline(__always)
private func product(_ dst: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>?, _ n: Int) {
    guard let g else { dst.update(from: x, count: n); return }
    var i = 0
    while i + 16 <= n { storeLanes(loadLanes(x + i) * loadLanes(g + i), dst + i); i += 16 }
    while i < n { dst[i] = x[i] * g[i]; i += 1 }
}

/// The depth taps of the divergence's three products at slice offset `base`, with `p_a = g · x_a`
/// read at the slices below (`below`) and above (`above`; nil outside):
/// `px = B_z p_x`, `py = B_z p_y`, `pz = D_z p_z`.
@inline(__always)
private func depthWeighted(
    _ px: UnsafeMutablePointer<Float>, _ py: UnsafeMutablePointer<Float>, _ pz: UnsafeMutablePointer<Float>,
    _ fx: UnsafePointer<Float>, _ fy: UnsafePointer<Float>, _ fz: UnsafePointer<Float>, _ g: UnsafePointer<Float>?,
    base: Int, below: Int?, above: Int?, count n: Int
) {
    @inline(__always) func weight(_ at: Int, _ i: Int) -> Lanes { g.map { loadLanes($0 + at + i) } ?? Lanes(repeating: 1) }
    @inline(__always) func weight1(_ at: Int, _ i: Int) -> Float { g.map { $0[at + i] } ?? 1 }
    let two = Lanes(repeating: 2)
    var i = 0
    while i + 16 <= n {
        let g0 = weight(base, i)
        var vx = two * g0 * loadLanes(fx + base + i), vy = two * g0 * loadLanes(fy + base + i), vz = Lanes(repeating: 0)
        if let below {
            let gb = weight(below, i)
            vx = vx.addingProduct(gb, loadLanes(fx + below + i)); vy = vy.addingProduct(gb, loadLanes(fy + below + i))
            vz = vz - gb * loadLanes(fz + below + i)
        }
        if let above {
            let ga = weight(above, i)
            vx = vx.addingProduct(ga, loadLanes(fx + above + i)); vy = vy.addingProduct(ga, loadLanes(fy + above + i))
            vz = vz.addingProduct(ga, loadLanes(fz + above + i))
        }
        storeLanes(vx, px + i); storeLanes(vy, py + i); storeLanes(vz, pz + i)
        i += 16
    }
    while i < n {
        let g0 = weight1(base, i)
        var vx = 2 * g0 * fx[base + i], vy = 2 * g0 * fy[base + i], vz: Float = 0
        if let below { let gb = weight1(below, i); vx += gb * fx[below + i]; vy += gb * fy[below + i]; vz -= gb * fz[below + i] }
        if let above { let ga = weight1(above, i); vx += ga * fx[above + i]; vy += ga * fy[above + i]; vz += ga * fz[above + i] }
        px[i] = vx; py[i] = vy; pz[i] = vz
        i += 1
    }
}

/// One output row of the divergence from the padded rows `a` (for D_x) and `b` (for B_x):
/// `dst[x] = a[x + 2] − a[x] + b[x] + 2 · b[x + 1] + b[x + 2]` (row index x + 1 is voxel x).
@inline(__always)
private func divergenceRow(_ dst: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) {
    let two = Lanes(repeating: 2)
    var i = 0
    while i + 16 <= n {
        let v = loadLanes(a + i + 2) - loadLanes(a + i) + loadLanes(b + i) + loadLanes(b + i + 2)
        storeLanes(v.addingProduct(two, loadLanes(b + i + 1)), dst + i)
        i += 16
    }
    while i < n { dst[i] = a[i + 2] - a[i] + b[i] + b[i + 2] + 2 * b[i + 1]; i += 1 }
}
