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
/// - Forward and backward are one fused pass per axis (no temporaries besides the gradient).
public struct GradientSmoothnessLoss: Sendable {
    public var penalty: SmoothnessPenalty

    public init(penalty: SmoothnessPenalty = .l2) { self.penalty = penalty }

    public func callAsFunction(_ flow: Tensor) -> Tensor {
        flow.preconditionImage("GradientSmoothnessLoss")
        let nd = flow.spatialRank
        let l1 = penalty == .l1
        let x = flow.storage.pointer
        let shape = flow.shape
        var total = 0.0
        var weights: [Float] = []
        for a in 0..<nd {
            let v = AxisView(shape, axis: a + 2)
            let pairs = v.outer * (v.n - 1) * v.inner
            let w = pairs > 0 ? 1 / (Double(nd) * Double(pairs)) : 0
            weights.append(Float(w))
            if pairs == 0 { continue }
            total += w * axisPenaltySum(x, v, l1: l1)
        }
        let value = Tensor(scalar: Float(total))
        return Tensor.record(value, inputs: [flow]) { g in
            let up = g.item
            let grad = Tensor(shape: shape) { out in
                out.initialize(repeating: 0, count: flow.count)
                let x = flow.storage.pointer
                for a in 0..<nd where weights[a] != 0 {
                    // d φ(u_{i+1} − u_i) adds +φ' to u_{i+1} and −φ' to u_i.
                    let scale = up * weights[a] * (l1 ? 1 : 2)
                    axisPenaltyBackward(x, out, AxisView(shape, axis: a + 2), l1: l1, scale: scale)
                }
            }
            return [grad]
        }
    }
}

/// Σ φ(x[o, i+1, k] − x[o, i, k]) over the view, in Double per row.
private func axisPenaltySum(_ x: UnsafeMutablePointer<Float>, _ v: AxisView, l1: Bool) -> Double {
    let rows = v.inner == 1 ? v.outer : v.outer * (v.n - 1)
    var partial = [Double](repeating: 0, count: rows)
    partial.withUnsafeMutableBufferPointer { pb in
        let part = pb.baseAddress!
        Parallel.forRanges(rows, grain: max(1, 65536 / max(v.inner == 1 ? v.n : v.inner, 1))) { range in
            for r in range {
                var acc: Float = 0
                if v.inner == 1 {
                    // Differences along the contiguous axis: one row of n values.
                    let p = x + r * v.n
                    for i in 0..<(v.n - 1) {
                        let d = p[i + 1] - p[i]
                        acc += l1 ? Swift.abs(d) : d * d
                    }
                } else {
                    let o = r / (v.n - 1), i = r % (v.n - 1)
                    let p0 = x + (o * v.n + i) * v.inner, p1 = p0 + v.inner
                    for k in 0..<v.inner {
                        let d = p1[k] - p0[k]
                        acc += l1 ? Swift.abs(d) : d * d
                    }
                }
                part[r] = Double(acc)
            }
        }
    }
    return partial.reduce(0, +)
}

/// out[o, i, k] += scale · (φ'(d_{i−1}) − φ'(d_i)), d_i = x[o, i+1, k] − x[o, i, k], with φ' the
/// derivative up to the constant folded into `scale` (sign for l1, d for l2).
private func axisPenaltyBackward(
    _ x: UnsafeMutablePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ v: AxisView, l1: Bool, scale: Float
) {
    @inline(__always) func dphi(_ d: Float) -> Float { l1 ? (d > 0 ? 1 : (d < 0 ? -1 : 0)) : d }
    if v.inner == 1 {
        Parallel.forRanges(v.outer, grain: max(1, 65536 / v.n)) { range in
            for o in range {
                let p = x + o * v.n, q = out + o * v.n
                var previous: Float = 0   // φ'(d_{i−1}), 0 before the first voxel
                for i in 0..<v.n {
                    let current = i + 1 < v.n ? dphi(p[i + 1] - p[i]) : 0
                    q[i] += scale * (previous - current)
                    previous = current
                }
            }
        }
    } else {
        Parallel.forRanges(v.outer * v.n, grain: max(1, 65536 / v.inner)) { range in
            for r in range {
                let i = r % v.n
                let p = x + r * v.inner, q = out + r * v.inner
                let hasPrev = i > 0, hasNext = i + 1 < v.n
                for k in 0..<v.inner {
                    let c = p[k]
                    let before = hasPrev ? dphi(c - p[k - v.inner]) : 0
                    let after = hasNext ? dphi(p[k + v.inner] - c) : 0
                    q[k] += scale * (before - after)
                }
            }
        }
    }
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
