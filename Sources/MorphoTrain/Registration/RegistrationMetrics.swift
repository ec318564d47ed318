import Foundation
import MorphoKernels
import MorphoTensor

/// How good a deformation is, measured on the field itself and on the images and labels it
/// moves. Nothing here is differentiable: these are the figures a registration reports, not
/// losses it trains on.
///
/// Fields are displacements `u` in **voxels** with VoxelMorph's layout (see `FORMAT.md` of the
/// fixtures): `[N, nd, D, H, W]` (3D, `nd = 3`) or `[N, nd, H, W]` (2D, `nd = 2`); channel `i`
/// displaces spatial axis `i` of the tensor (3D: 0 = D (z), 1 = H (y), 2 = W (x)). The mapping
/// studied is `φ(p) = p + u(p)`.
public enum RegistrationMetrics {
    /// `det(∂φ/∂p) = det(I + ∇u)` at every voxel, `[N, 1, spatial…]`.
    ///
    /// `∂u_i/∂p_j` uses central differences `(u[k+1] − u[k−1]) / 2` inside the volume and
    /// one-sided differences on its faces (numpy's `gradient`, which VoxelMorph's
    /// `jacobian_determinant` uses); an axis of extent 1 contributes a zero derivative. Units:
    /// voxels, so the determinant is the local volume ratio regardless of spacing.
    /// `det > 1` is expansion, `0 < det < 1` compression, `det ≤ 0` a fold.
    public static func jacobianDeterminant(_ flow: Tensor) -> Tensor {
        let (n, nd, spatial) = flowGeometry(flow)
        let count = spatial.reduce(1, *)
        // Strides of the spatial axes (the last axis is the fastest).
        var strides = [Int](repeating: 1, count: nd)
        for a in stride(from: nd - 2, through: 0, by: -1) { strides[a] = strides[a + 1] * spatial[a + 1] }
        let rows = count / spatial[nd - 1]
        return Tensor(shape: [n, 1] + spatial) { out in
            flow.withUnsafePointer { u in
                Parallel.forRanges(n * rows, grain: 64) { range in
                    var p = [Int](repeating: 0, count: nd)
                    var m = [Double](repeating: 0, count: nd * nd)
                    for row in range {
                        let b = row / rows
                        let base = u + b * nd * count
                        for x in 0..<spatial[nd - 1] {
                            let index = (row - b * rows) * spatial[nd - 1] + x
                            var rest = index
                            for a in 0..<nd { p[a] = rest / strides[a]; rest -= p[a] * strides[a] }
                            for i in 0..<nd {
                                let channel = base + i * count + index
                                for j in 0..<nd {
                                    m[i * nd + j] = (i == j ? 1 : 0)
                                        + partial(channel, stride: strides[j], at: p[j], extent: spatial[j])
                                }
                            }
                            out[b * count + index] = Float(determinant(m, nd))
                        }
                    }
                }
            }
        }
    }

    /// Derivative along one axis at position `k` of a line of `extent` samples, `stride` apart,
    /// `value` pointing at sample `k`.
    @inline(__always)
    static func partial(_ value: UnsafePointer<Float>, stride: Int, at k: Int, extent: Int) -> Double {
        if extent < 2 { return 0 }
        if k == 0 { return Double(value[stride]) - Double(value[0]) }
        if k == extent - 1 { return Double(value[0]) - Double(value[-stride]) }
        return 0.5 * (Double(value[stride]) - Double(value[-stride]))
    }

    @inline(__always)
    static func determinant(_ m: [Double], _ nd: Int) -> Double {
        if nd == 2 { return m[0] * m[3] - m[1] * m[2] }
        return m[0] * (m[4] * m[8] - m[5] * m[7])
            - m[1] * (m[3] * m[8] - m[5] * m[6])
            + m[2] * (m[3] * m[7] - m[4] * m[6])
    }

    /// Summary statistics of a Jacobian determinant map (`jacobianDeterminant`'s output), over
    /// all voxels of all batch items.
    public struct JacobianStatistics: Codable, Equatable, Sendable {
        /// Fraction (0…1) of voxels with `det ≤ 0`: where the mapping folds.
        public var foldingFraction: Double
        /// Voxels with `det ≤ 0`.
        public var foldingCount: Int
        /// Standard deviation of `log det` over the voxels with `det > 0` (0 for a rigid or
        /// identity mapping, grows with the irregularity of the field; 0 when no voxel has
        /// `det > 0`).
        public var logJacobianStd: Double
        public var minimum: Double
        public var maximum: Double
        public var mean: Double
    }

    /// Folding fraction, std of log|J| and the range of a determinant map.
    public static func jacobianStatistics(_ determinant: Tensor) -> JacobianStatistics {
        determinant.withUnsafeBufferPointer { d in
            var folds = 0
            var positive = 0
            var sumLog = 0.0, sumLog2 = 0.0, sum = 0.0
            var lo = Double.infinity, hi = -Double.infinity
            for v in d {
                let x = Double(v)
                sum += x
                lo = min(lo, x)
                hi = max(hi, x)
                if x > 0 {
                    let l = log(x)
                    sumLog += l
                    sumLog2 += l * l
                    positive += 1
                } else {
                    folds += 1
                }
            }
            let mean = positive > 0 ? sumLog / Double(positive) : 0
            let variance = positive > 0 ? max(0, sumLog2 / Double(positive) - mean * mean) : 0
            return JacobianStatistics(
                foldingFraction: d.isEmpty ? 0 : Double(folds) / Double(d.count), foldingCount: folds,
                logJacobianStd: variance.squareRoot(), minimum: lo, maximum: hi,
                mean: d.isEmpty ? 0 : sum / Double(d.count))
        }
    }

    /// `jacobianStatistics(jacobianDeterminant(flow))`.
    public static func jacobianStatistics(ofFlow flow: Tensor) -> JacobianStatistics {
        jacobianStatistics(jacobianDeterminant(flow))
    }

    /// Dice overlap `2|A ∩ B| / (|A| + |B|)` of every label in two integer label maps of the same
    /// shape (any layout; values are rounded to the nearest integer). Label 0 is background
    /// and skipped; a label present in only one map scores 0; a label in neither is not listed
    /// unless named in `labels`, in which case it scores NaN (nothing to overlap).
    ///
    /// - Returns: `(label, dice)` sorted by label.
    public static func dicePerLabel(_ a: Tensor, _ b: Tensor, labels: [Int]? = nil) -> [LabelDice] {
        precondition(a.count == b.count, "dice of label maps with \(a.count) and \(b.count) voxels")
        var inA: [Int: Int] = [:], inB: [Int: Int] = [:], both: [Int: Int] = [:]
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                for i in 0..<pa.count {
                    let la = Int(pa[i].rounded()), lb = Int(pb[i].rounded())
                    if la != 0 { inA[la, default: 0] += 1 }
                    if lb != 0 { inB[lb, default: 0] += 1 }
                    if la == lb, la != 0 { both[la, default: 0] += 1 }
                }
            }
        }
        let wanted = labels ?? Array(Set(inA.keys).union(inB.keys))
        return wanted.filter { $0 != 0 }.sorted().map { label in
            let total = (inA[label] ?? 0) + (inB[label] ?? 0)
            let dice = total == 0 ? Double.nan : 2 * Double(both[label] ?? 0) / Double(total)
            return LabelDice(label: label, dice: dice)
        }
    }

    /// One label's Dice score.
    public struct LabelDice: Codable, Equatable, Sendable {
        public var label: Int
        public var dice: Double
    }

    /// Mean of the finite scores (NaN when there are none).
    public static func meanDice(_ scores: [LabelDice]) -> Double {
        let finite = scores.map(\.dice).filter(\.isFinite)
        return finite.isEmpty ? .nan : finite.reduce(0, +) / Double(finite.count)
    }

    /// `(N, nd, spatial)` of a flow tensor, checking that the channel count matches the rank.
    static func flowGeometry(_ flow: Tensor) -> (Int, Int, [Int]) {
        precondition(flow.rank == 4 || flow.rank == 5, "flow must be [N, nd, H, W] or [N, nd, D, H, W], got \(flow.shape)")
        let nd = flow.rank - 2
        precondition(flow.shape[1] == nd, "flow \(flow.shape) needs \(nd) channels, one per spatial axis")
        return (flow.shape[0], nd, flow.spatialShape)
    }
}
