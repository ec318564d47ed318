import Foundation

// Exact Euclidean distance transforms (Felzenszwalb & Huttenlocher, "Distance Transforms of
// Sampled Functions", Theory of Computing 8, 2012): the squared EDT is separable, so one pass of
// the 1-D lower envelope of parabolas per axis gives the exact result in O(voxels) per axis.
//
// Shapes: `shape` lists 1, 2 or 3 spatial axes (`[W]`, `[H, W]`, `[D, H, W]`, last fastest);
// `spacing` gives the voxel size along each of them in mm (scipy's `sampling`), default 1.
// Distances are in mm. No batch or channel axis: callers loop over classes and images.

/// Squared Euclidean distance (mm²) from every voxel where `mask` is true to the nearest voxel
/// where it is false; 0 where `mask` is false. This is `scipy.ndimage.distance_transform_edt(mask,
/// sampling: spacing) ** 2`. A mask with no false voxel gives `+infinity` at every voxel.
///
/// - Parameters:
///   - mask: `shape.reduce(1, *)` booleans, row-major (last axis fastest).
///   - shape: 1–3 spatial sizes.
///   - spacing: voxel size per axis in mm (`nil`: 1 mm everywhere).
///   - out: the result, same count as `mask`. Runs on `Parallel.threads` threads.
public func squaredEDT(
    mask: UnsafeBufferPointer<Bool>, shape: [Int], spacing: [Double]? = nil,
    into out: UnsafeMutableBufferPointer<Float>
) {
    let grid = EDTGrid(shape: shape, spacing: spacing, count: mask.count, outCount: out.count)
    squaredDistanceToFeatures(mask.baseAddress!, featureValue: false, grid: grid, out: out.baseAddress!)
}

/// Array form of `squaredEDT(mask:shape:spacing:into:)`.
public func squaredEDT(mask: [Bool], shape: [Int], spacing: [Double]? = nil) -> [Float] {
    var out = [Float](repeating: 0, count: mask.count)
    mask.withUnsafeBufferPointer { m in
        out.withUnsafeMutableBufferPointer { squaredEDT(mask: m, shape: shape, spacing: spacing, into: $0) }
    }
    return out
}

/// Euclidean distance (mm) from every voxel to the nearest voxel where `mask` is true; 0 on the
/// mask itself. This is what Hausdorff and average-surface-distance metrics read off (with the
/// mask set to one surface). An empty mask gives `+infinity` everywhere.
///
/// Shapes and threading as `squaredEDT`.
public func distanceToMask(
    _ mask: UnsafeBufferPointer<Bool>, shape: [Int], spacing: [Double]? = nil,
    into out: UnsafeMutableBufferPointer<Float>
) {
    let grid = EDTGrid(shape: shape, spacing: spacing, count: mask.count, outCount: out.count)
    let o = out.baseAddress!
    squaredDistanceToFeatures(mask.baseAddress!, featureValue: true, grid: grid, out: o)
    Parallel.forRanges(grid.count) { r in for i in r { o[i] = o[i].squareRoot() } }
}

/// Array form of `distanceToMask(_:shape:spacing:into:)`.
public func distanceToMask(_ mask: [Bool], shape: [Int], spacing: [Double]? = nil) -> [Float] {
    var out = [Float](repeating: 0, count: mask.count)
    mask.withUnsafeBufferPointer { m in
        out.withUnsafeMutableBufferPointer { distanceToMask(m, shape: shape, spacing: spacing, into: $0) }
    }
    return out
}

/// Signed distance map of one binary mask, in mm, as the boundary loss uses it (seed 004,
/// `one_hot2dist`, Kervadec et al., "Boundary loss for highly unbalanced segmentation"):
///
///     φ = edt(¬m) · ¬m − (edt(m) − 1) · m
///
/// where `edt(x)` is, at each voxel where `x` is true, the distance to the nearest voxel where `x`
/// is false (`squaredEDT` semantics). Outside the mask φ is the distance to the mask (> 0); inside
/// it is `1 − distance to the background` (≤ 0; the seed's `− 1` is in mm whatever the spacing, so
/// the first layer of the mask is 0). **An empty or a full mask gives all zeros** (no boundary),
/// as the seed's `if posmask.any()` and the fixtures `signed_distance_empty/full` require.
///
/// Shapes and threading as `squaredEDT`; the two EDTs run one after the other.
public func signedDistance(
    mask: UnsafeBufferPointer<Bool>, shape: [Int], spacing: [Double]? = nil,
    into out: UnsafeMutableBufferPointer<Float>
) {
    let grid = EDTGrid(shape: shape, spacing: spacing, count: mask.count, outCount: out.count)
    let m = mask.baseAddress!, o = out.baseAddress!
    var anyTrue = false, anyFalse = false
    for i in 0..<grid.count {
        if m[i] { anyTrue = true } else { anyFalse = true }
        if anyTrue && anyFalse { break }
    }
    guard anyTrue && anyFalse else {
        o.update(repeating: 0, count: grid.count)
        return
    }
    let inside = UnsafeMutablePointer<Float>.allocate(capacity: grid.count)
    defer { inside.deallocate() }
    squaredDistanceToFeatures(m, featureValue: true, grid: grid, out: o)       // to the mask
    squaredDistanceToFeatures(m, featureValue: false, grid: grid, out: inside) // to the background
    Parallel.forRanges(grid.count) { r in
        for i in r { o[i] = m[i] ? 1 - inside[i].squareRoot() : o[i].squareRoot() }
    }
}

/// Array form of `signedDistance(mask:shape:spacing:into:)`.
public func signedDistance(mask: [Bool], shape: [Int], spacing: [Double]? = nil) -> [Float] {
    var out = [Float](repeating: 0, count: mask.count)
    mask.withUnsafeBufferPointer { m in
        out.withUnsafeMutableBufferPointer { signedDistance(mask: m, shape: shape, spacing: spacing, into: $0) }
    }
    return out
}

// MARK: - Implementation

/// Shape and spacing padded to three axes `[D, H, W]` (leading axes of size 1, spacing 1).
struct EDTGrid {
    var d: Int, h: Int, w: Int
    var sd: Double, sh: Double, sw: Double
    var count: Int { d * h * w }

    init(shape: [Int], spacing: [Double]?, count: Int, outCount: Int) {
        precondition((1...3).contains(shape.count), "distance transform: shape must have 1–3 axes, got \(shape)")
        precondition(shape.allSatisfy { $0 > 0 }, "distance transform: sizes must be positive, got \(shape)")
        let sp = spacing ?? Array(repeating: 1, count: shape.count)
        precondition(sp.count == shape.count, "distance transform: spacing \(sp) does not match shape \(shape)")
        precondition(sp.allSatisfy { $0 > 0 && $0.isFinite }, "distance transform: spacing must be positive, got \(sp)")
        let dims = Array(repeating: 1, count: 3 - shape.count) + shape
        let sps = Array(repeating: 1.0, count: 3 - shape.count) + sp
        d = dims[0]; h = dims[1]; w = dims[2]
        sd = sps[0]; sh = sps[1]; sw = sps[2]
        precondition(count == d * h * w && outCount == count,
                     "distance transform: mask has \(count) and output \(outCount) voxels, shape \(shape) needs \(d * h * w)")
    }
}

/// Squared distance (mm²) from every voxel to the nearest voxel whose mask value equals
/// `featureValue` (+infinity if there is none). Pass 1 along W is a two-sweep 1-D distance; the
/// H and D passes take the lower envelope of parabolas (exact, Felzenszwalb–Huttenlocher).
func squaredDistanceToFeatures(
    _ mask: UnsafePointer<Bool>, featureValue: Bool, grid: EDTGrid, out: UnsafeMutablePointer<Float>
) {
    let (d, h, w) = (grid.d, grid.h, grid.w)
    let sw2 = Float(grid.sw * grid.sw)
    // Pass 1: squared distance along each row to the nearest feature in that row.
    Parallel.forRanges(d * h, grain: max(1, 4096 / w)) { rows in
        for row in rows {
            let m = mask + row * w, o = out + row * w
            var last = -1
            for x in 0..<w {
                if m[x] == featureValue { last = x }
                o[x] = last >= 0 ? Float(x - last) : .infinity
            }
            var next = -1
            for x in stride(from: w - 1, through: 0, by: -1) {
                if m[x] == featureValue { next = x }
                if next >= 0 { o[x] = min(o[x], Float(next - x)) }
                o[x] = o[x] * o[x] * sw2
            }
        }
    }
    // Passes 2 and 3: the lower envelope along H (lines [D][H][W], stride W) and along D
    // (lines [H·W] of stride H·W).
    if h > 1 { envelopePass(out, outer: d, n: h, inner: w, spacing: grid.sh) }
    if d > 1 { envelopePass(out, outer: 1, n: d, inner: h * w, spacing: grid.sd) }
}

/// Lanes gathered per tile: 16 floats are one cache line of each strided line's neighbourhood,
/// so a tile reads and writes whole cache lines although the lines themselves are strided.
private let edtTileLanes = 16

/// In place, for data viewed as `[outer, n, inner]`: replaces every line along the middle axis
/// (stride `inner`) by the lower envelope `min_j f[j] + ((i − j)·spacing)²`.
private func envelopePass(_ data: UnsafeMutablePointer<Float>, outer: Int, n: Int, inner: Int, spacing: Double) {
    let T = edtTileLanes
    let tilesPerOuter = (inner + T - 1) / T
    let tiles = outer * tilesPerOuter
    Parallel.forRanges(tiles, grain: max(1, 8192 / (n * T))) { range in
        // Scratch for one tile: the gathered lines, the result lines and the envelope.
        let lines = UnsafeMutablePointer<Float>.allocate(capacity: n * T)
        let result = UnsafeMutablePointer<Float>.allocate(capacity: n * T)
        let scratch = EnvelopeScratch(n: n)
        defer { lines.deallocate(); result.deallocate(); scratch.deallocate() }
        for tile in range {
            let o = tile / tilesPerOuter
            let lane0 = (tile % tilesPerOuter) * T
            let lanes = min(T, inner - lane0)
            let base = data + o * n * inner + lane0
            // A line that is all 0 (all features) or all +∞ (no feature) is its own envelope;
            // most lines of a mask far from the boundary are, and a whole tile of them is skipped.
            if lanes == T {
                var nonZero = SIMDMask<SIMD16<Int32>>(repeating: false), finite = nonZero
                for i in 0..<n {
                    let v = loadLanes(base + i * inner)
                    nonZero = nonZero .| (v .!= 0)
                    finite = finite .| (v .!= .infinity)
                }
                if !any(nonZero .& finite) { continue }
            }
            // Gather: line l of the tile is column lane0 + l, stored contiguously.
            for i in 0..<n {
                let row = base + i * inner
                for l in 0..<lanes { lines[l * n + i] = row[l] }
            }
            for l in 0..<lanes {
                lowerEnvelope(lines + l * n, n: n, spacing: spacing, out: result + l * n, scratch: scratch)
            }
            for i in 0..<n {
                let row = base + i * inner
                for l in 0..<lanes { row[l] = result[l * n + i] }
            }
        }
    }
}

/// Working memory of one 1-D lower envelope of length `n`.
private struct EnvelopeScratch {
    let vertex: UnsafeMutablePointer<Int32>  // parabola apex positions in the envelope
    let apex: UnsafeMutablePointer<Double>   // f at each apex
    let key: UnsafeMutablePointer<Double>    // f + x² at each apex (numerator of the intersection)
    let bound: UnsafeMutablePointer<Double>  // left boundary of each parabola's interval (n + 1)
    init(n: Int) {
        vertex = .allocate(capacity: n); apex = .allocate(capacity: n)
        key = .allocate(capacity: n); bound = .allocate(capacity: n + 1)
    }
    func deallocate() { vertex.deallocate(); apex.deallocate(); key.deallocate(); bound.deallocate() }
}

/// `out[i] = min_j f[j] + ((i − j)·spacing)²` over the finite `f[j]` (+infinity if none).
/// Arithmetic in Double: the intersection abscissa subtracts two large squares, and the line is
/// in cache, so double precision costs nothing measurable here.
@inline(__always)
private func lowerEnvelope(
    _ f: UnsafePointer<Float>, n: Int, spacing: Double, out: UnsafeMutablePointer<Float>, scratch: EnvelopeScratch
) {
    let v = scratch.vertex, fa = scratch.apex, g = scratch.key, z = scratch.bound
    if (0..<n).allSatisfy({ f[$0] == 0 }) {  // every voxel a feature: all distances 0
        out.update(repeating: 0, count: n)
        return
    }
    var k = -1
    for q in 0..<n {
        let fq = f[q]
        if fq == .infinity { continue }
        let xq = Double(q) * spacing
        let gq = Double(fq) + xq * xq
        if k < 0 {
            k = 0; v[0] = Int32(q); fa[0] = Double(fq); g[0] = gq; z[0] = -.infinity
            continue
        }
        var s = (gq - g[k]) / (2 * (xq - Double(v[k]) * spacing))
        while s <= z[k] {  // terminates: z[0] = −∞
            k -= 1
            s = (gq - g[k]) / (2 * (xq - Double(v[k]) * spacing))
        }
        k += 1
        v[k] = Int32(q); fa[k] = Double(fq); g[k] = gq; z[k] = s
    }
    if k < 0 {
        out.update(repeating: .infinity, count: n)
        return
    }
    z[k + 1] = .infinity
    var j = 0
    for q in 0..<n {
        let xq = Double(q) * spacing
        while z[j + 1] < xq { j += 1 }
        let dx = xq - Double(v[j]) * spacing
        out[q] = Float(dx * dx + fa[j])
    }
}
