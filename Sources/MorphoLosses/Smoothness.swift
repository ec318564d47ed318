import MorphoKernels
import MorphoTensor

// Regularisers of displacement fields and affine matrices (seed 002): first-order gradient
// penalties, the bending energy (second order) and the distance of an affine to the identity.
// Fields are `[N, nd, spatial...]` in voxels (FORMAT.md: channel i displaces spatial axis i), but
// nothing here depends on the channel count: every channel is penalised alike.

/// A tensor seen as `outer × n × inner` around one axis.
struct AxisView {
    var outer: Int, n: Int, inner: Int
    init(_ shape: [Int], axis: Int) {
        outer = shape[..<axis].reduce(1, *)
        n = shape[axis]
        inner = shape[(axis + 1)...].reduce(1, *)
    }
}

/// The penalty of `GradientSmoothnessLoss`.
public enum SmoothnessPenalty: String, Sendable, CaseIterable {
    /// |Δu| (total variation style).
    case l1
    /// (Δu)² (diffusion regulariser, VoxelMorph's default).
    case l2
}

/// First-order smoothness of a displacement field (seed 002 `Grad`, VoxelMorph `Grad`):
///
///     L = (1/nd) Σ_a mean_{voxels} φ(u(x + e_a) − u(x)),   φ = |·| (l1) or (·)² (l2)
///
/// where a runs over the nd spatial axes, the forward difference along a is taken wherever both
/// voxels exist (extent n_a − 1 along a) and the mean is over all of its elements (batch and
/// channels included).
///
/// - flow: `[N, C, H, W]` or `[N, C, D, H, W]` (C is usually nd), in voxels.
/// - Degenerate inputs: a spatial axis of extent 1 has no differences and contributes 0 (PyTorch
///   would take the mean of an empty tensor, NaN). A constant field gives 0.
/// - Forward and backward are each one fused, vectorised pass over the rows of the field: every
///   output row reads its neighbours along all axes while they are in cache. The l1 derivative
///   at a zero difference is 0, as PyTorch's sign.
public struct GradientSmoothnessLoss: Sendable {
    public var penalty: SmoothnessPenalty

    public init(penalty: SmoothnessPenalty = .l2) { self.penalty = penalty }

    public func callAsFunction(_ flow: Tensor) -> Tensor {
        flow.preconditionImage("GradientSmoothnessLoss")
        let nd = flow.spatialRank
        let l1 = penalty == .l1
        let dims = Array(repeating: 1, count: 3 - nd) + flow.spatialShape
        let (d, h, w) = (dims[0], dims[1], dims[2])
        let planes = flow.shape[0] * flow.shape[1]
        // Weight 1/(nd · number of differences) per axis [D, H, W]; 0 for an axis without any.
        let weights: [Float] = (0..<3).map { a in
            let pairs = planes * (dims[a] - 1) * dims.enumerated().filter { $0.offset != a }.map(\.element).reduce(1, *)
            return pairs > 0 ? Float(1 / (Double(nd) * Double(pairs))) : 0
        }
        let rows = planes * d * h
        let x = flow.storage.pointer
        let sums = blockSums(items: 1, spatial: rows, width: 3, block: max(1, 16384 / w)) { _, range, acc in
            let padded = UnsafeMutablePointer<Float>.allocate(capacity: w + 2)
            defer { padded.deallocate() }
            var sd = Lanes(), sh = Lanes(), sw = Lanes()
            for r in range {
                let row = x + r * w
                let (next, _) = neighbours(row, r: r, d: d, h: h, w: w, padded: padded)
                // A missing neighbour is the row itself: its differences are 0 and add nothing.
                var v = 0
                while v < w {
                    let n = min(16, w - v), full = n == 16
                    @inline(__always) func get(_ p: UnsafeMutablePointer<Float>) -> Lanes { full ? loadLanes(p + v) : loadLanes(p + v, count: n) }
                    let c = get(row)
                    sd += phi(get(next.d) - c, l1: l1)
                    sh += phi(get(next.h) - c, l1: l1)
                    sw += phi(get(padded + 2) - c, l1: l1)
                    v += 16
                }
            }
            acc[0] = laneSum(sd); acc[1] = laneSum(sh); acc[2] = laneSum(sw)
        }
        let total = Double(weights[0]) * sums[0] + Double(weights[1]) * sums[1] + Double(weights[2]) * sums[2]
        let value = Tensor(scalar: Float(total))
        return Tensor.record(value, inputs: [flow]) { g in
            // d φ(u_{i+1} − u_i) adds +φ' to u_{i+1} and −φ' to u_i; φ' = sign (l1) or 2·difference (l2).
            let k = g.item * (l1 ? 1 : 2)
            let wd = k * weights[0], wh = k * weights[1], ww = k * weights[2]
            let grad = Tensor(shape: flow.shape) { out in
                let x = flow.storage.pointer
                Parallel.forRanges(rows, grain: max(1, 16384 / w)) { range in
                    let padded = UnsafeMutablePointer<Float>.allocate(capacity: w + 2)
                    defer { padded.deallocate() }
                    for r in range {
                        let row = x + r * w, o = out + r * w
                        let (next, previous) = neighbours(row, r: r, d: d, h: h, w: w, padded: padded)
                        var v = 0
                        while v < w {
                            let n = min(16, w - v), full = n == 16
                            @inline(__always) func get(_ p: UnsafeMutablePointer<Float>) -> Lanes { full ? loadLanes(p + v) : loadLanes(p + v, count: n) }
                            let c = get(row)
                            var gv = wd * (dphi(c - get(previous.d), l1: l1) - dphi(get(next.d) - c, l1: l1))
                            gv = gv.addingProduct(wh, dphi(c - get(previous.h), l1: l1) - dphi(get(next.h) - c, l1: l1))
                            gv = gv.addingProduct(ww, dphi(c - get(padded), l1: l1) - dphi(get(padded + 2) - c, l1: l1))
                            if full { storeLanes(gv, o + v) } else { storeLanes(gv, o + v, count: n) }
                            v += 16
                        }
                    }
                }
            }
            return [grad]
        }
    }
}

/// The rows after and before `row` (row index `r` of `[planes, D, H]` rows of `w` voxels) along
/// D and H — the row itself where there is none, so the difference is 0 — and the row copied
/// into `padded` with its edge voxels repeated (`padded[x + 1] = row[x]`), so that `padded` and
/// `padded + 2` are its W neighbours with zero differences at the two ends.
@inline(__always)
private func neighbours(
    _ row: UnsafeMutablePointer<Float>, r: Int, d: Int, h: Int, w: Int, padded: UnsafeMutablePointer<Float>
) -> (next: (d: UnsafeMutablePointer<Float>, h: UnsafeMutablePointer<Float>), previous: (d: UnsafeMutablePointer<Float>, h: UnsafeMutablePointer<Float>)) {
    let z = (r / h) % d, y = r % h, hw = h * w
    padded[0] = row[0]
    (padded + 1).update(from: row, count: w)
    padded[w + 1] = row[w - 1]
    return ((z + 1 < d ? row + hw : row, y + 1 < h ? row + w : row),
            (z > 0 ? row - hw : row, y > 0 ? row - w : row))
}

/// φ(d): |d| (l1) or d² (l2), per lane.
@inline(__always) private func phi(_ d: Lanes, l1: Bool) -> Lanes {
    l1 ? d.replacing(with: -d, where: d .< 0) : d * d
}

/// φ'(d) up to the constant folded into the weights: sign(d) (0 at 0) for l1, d for l2.
@inline(__always) private func dphi(_ d: Lanes, l1: Bool) -> Lanes {
    l1 ? Lanes().replacing(with: 1, where: d .> 0).replacing(with: -1, where: d .< 0) : d
}

extension Tensor {
    /// Forward difference along `axis`: `y[..., i, ...] = x[..., i+1, ...] − x[..., i, ...]`, extent
    /// n − 1 along that axis (empty if n = 1). Differentiable (the adjoint scatters +g to i+1 and
    /// −g to i).
    func forwardDifference(axis: Int) -> Tensor {
        let v = AxisView(shape, axis: axis)
        var outShape = shape
        outShape[axis] = max(0, v.n - 1)
        let m = max(0, v.n - 1)
        let x = storage.pointer
        let y = Tensor(shape: outShape) { out in
            Parallel.forRanges(v.outer * m, grain: max(1, 65536 / v.inner)) { range in
                for r in range {
                    let o = r / m, i = r % m
                    let p = x + (o * v.n + i) * v.inner, q = out + r * v.inner
                    for k in 0..<v.inner { q[k] = p[k + v.inner] - p[k] }
                }
            }
        }
        return Tensor.record(y, inputs: [self]) { [shape] g in
            let pg = g.storage.pointer
            return [Tensor(shape: shape) { dx in
                Parallel.forRanges(v.outer * v.n, grain: max(1, 65536 / v.inner)) { range in
                    for r in range {
                        let o = r / v.n, i = r % v.n
                        let q = dx + r * v.inner
                        let before = i > 0 ? pg + (o * m + i - 1) * v.inner : nil
                        let at = i < m ? pg + (o * m + i) * v.inner : nil
                        for k in 0..<v.inner { q[k] = (before?[k] ?? 0) - (at?[k] ?? 0) }
                    }
                }
            }]
        }
    }
}

/// Bending energy of a displacement field (seed 002 `Bend_Penalty`; 3D per FORMAT.md):
///
///     L = Σ_a mean((Δ_a Δ_a u)²) + 2 Σ_{a<b} mean((Δ_a Δ_b u)²)
///
/// with Δ_a the forward difference along spatial axis a and each mean over all elements of that
/// second difference (extent n − 2 along a for Δ_aΔ_a, n − 1 along both a and b for Δ_aΔ_b).
/// In 2D this is the seed's `mean(Tyy²) + mean(Txx²) + 2·mean(Txy²)`.
///
/// - flow: `[N, C, H, W]` or `[N, C, D, H, W]`, in voxels.
/// - Degenerate inputs: a second difference with no element (extent < 3 or < 2) contributes 0.
///   Any affine field gives 0.
public struct BendingEnergyLoss: Sendable {
    public init() {}

    public func callAsFunction(_ flow: Tensor) -> Tensor {
        flow.preconditionImage("BendingEnergyLoss")
        let nd = flow.spatialRank
        let first = (0..<nd).map { flow.forwardDifference(axis: $0 + 2) }
        var total: Tensor?
        func add(_ t: Tensor, _ w: Float) {
            guard t.count > 0 else { return }
            let term = t.squared().mean() * w
            total = total.map { $0 + term } ?? term
        }
        for a in 0..<nd {
            add(first[a].forwardDifference(axis: a + 2), 1)
            for b in (a + 1)..<nd {
                // Δ_a Δ_b u; the seed's 2D Txy differentiates Tx (W) along H.
                add(first[b].forwardDifference(axis: a + 2), 2)
            }
        }
        return total ?? Tensor(scalar: 0)
    }
}

/// Distance of affine matrices from the identity (seed 002 `IDloss`):
///
///     L = mean |θ − [I | 0]|  (l1)   or   mean (θ − [I | 0])²  (l2)
///
/// - theta: `[N, nd, nd + 1]` (2D: `[N, 2, 3]`, 3D: `[N, 3, 4]`), the last column the translation.
/// - Reduction: mean over all N·nd·(nd+1) entries. The identity gives 0.
public struct AffineIdentityLoss: Sendable {
    public var penalty: SmoothnessPenalty

    public init(penalty: SmoothnessPenalty = .l1) { self.penalty = penalty }

    public func callAsFunction(_ theta: Tensor) -> Tensor {
        precondition(theta.rank == 3 && theta.shape[2] == theta.shape[1] + 1,
                     "AffineIdentityLoss: expected theta [N, nd, nd + 1], got \(theta.shape)")
        let nd = theta.shape[1]
        let identity = Tensor(shape: [1, nd, nd + 1]) { p in
            for r in 0..<nd { for c in 0...nd { p[r * (nd + 1) + c] = r == c ? 1 : 0 } }
        }
        let d = theta - identity
        return penalty == .l1 ? d.abs().mean() : d.squared().mean()
    }
}
