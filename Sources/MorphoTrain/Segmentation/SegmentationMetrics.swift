import Foundation
import MorphoKernels

/// Overlap and surface-distance scores of one label.
public struct LabelMetrics: Equatable, Sendable {
    public var label: Int
    /// `2|P ∩ R| / (|P| + |R|)`; 1 when both are empty.
    public var dice: Double
    /// 95th percentile Hausdorff distance in mm: `max(q95(d(∂P → ∂R)), q95(d(∂R → ∂P)))` (MONAI's
    /// `compute_hausdorff_distance(percentile=95)`); 0 when both are empty, +∞ when one is.
    public var hd95: Double
    /// Symmetric mean surface distance in mm: the mean of all distances from each surface voxel of
    /// one mask to the other surface, both directions pooled (MONAI's
    /// `compute_average_surface_distance(symmetric=True)`); 0 / +∞ as `hd95`.
    public var meanSurfaceDistance: Double
    /// Voxel counts of the label in the prediction and the reference.
    public var predictedVoxels: Int
    public var referenceVoxels: Int
}

/// Dice, HD95 and mean surface distance between label maps on one grid.
///
/// Surfaces are the mask voxels with at least one face neighbour (4 in a single plane, 6 in 3D)
/// outside the mask; voxels beyond the array count as outside, so a mask touching the border has a
/// surface there. Distances are Euclidean between voxel centres in mm (exact EDT of the other
/// surface, with the voxel spacing).
public enum SegmentationMetrics {
    /// Metrics of each label in `labels`.
    ///
    /// - Parameters:
    ///   - prediction, reference: label values, `shape.reduce(1, *)` each, layout `[D, H, W]`.
    ///   - shape: `[D, H, W]` (D = 1 for a single slice).
    ///   - spacing: voxel size in mm along `[D, H, W]`.
    public static func evaluate(
        prediction: [Float], reference: [Float], shape: [Int], spacing: [Double], labels: [Int]
    ) -> [LabelMetrics] {
        precondition(prediction.count == reference.count && prediction.count == shape.reduce(1, *), "label maps must share the grid")
        return labels.map { k in
            let p = prediction.map { Int($0) == k }
            let r = reference.map { Int($0) == k }
            return compare(p, r, shape: shape, spacing: spacing, label: k)
        }
    }

    /// Metrics of two binary masks.
    public static func compare(_ p: [Bool], _ r: [Bool], shape: [Int], spacing: [Double], label: Int = 1) -> LabelMetrics {
        var np = 0, nr = 0, both = 0
        for i in p.indices {
            if p[i] { np += 1 }
            if r[i] { nr += 1 }
            if p[i] && r[i] { both += 1 }
        }
        if np == 0 && nr == 0 {
            return LabelMetrics(label: label, dice: 1, hd95: 0, meanSurfaceDistance: 0, predictedVoxels: 0, referenceVoxels: 0)
        }
        let dice = 2 * Double(both) / Double(np + nr)
        if np == 0 || nr == 0 {
            return LabelMetrics(
                label: label, dice: dice, hd95: .infinity, meanSurfaceDistance: .infinity, predictedVoxels: np, referenceVoxels: nr)
        }
        let (pToR, rToP) = surfaceDistances(p, r, shape: shape, spacing: spacing)
        let hd95 = max(percentile(pToR, 95), percentile(rToP, 95))
        let msd = (pToR.reduce(0, +) + rToP.reduce(0, +)) / Double(pToR.count + rToP.count)
        return LabelMetrics(label: label, dice: dice, hd95: hd95, meanSurfaceDistance: msd, predictedVoxels: np, referenceVoxels: nr)
    }

    /// Distances (mm) from every surface voxel of `a` to the surface of `b`, and back.
    public static func surfaceDistances(_ a: [Bool], _ b: [Bool], shape: [Int], spacing: [Double]) -> (aToB: [Double], bToA: [Double]) {
        let sa = surface(a, shape: shape), sb = surface(b, shape: shape)
        let toB = distanceToMask(sb, shape: shape, spacing: spacing)
        let toA = distanceToMask(sa, shape: shape, spacing: spacing)
        var ab: [Double] = [], ba: [Double] = []
        for i in sa.indices {
            if sa[i] { ab.append(Double(toB[i])) }
            if sb[i] { ba.append(Double(toA[i])) }
        }
        return (ab, ba)
    }

    /// Mask voxels with a face neighbour outside the mask (or outside the array).
    public static func surface(_ mask: [Bool], shape: [Int]) -> [Bool] {
        let (d, h, w) = (shape[0], shape[1], shape[2])
        var out = [Bool](repeating: false, count: mask.count)
        for z in 0..<d {
            for y in 0..<h {
                for x in 0..<w {
                    let i = (z * h + y) * w + x
                    guard mask[i] else { continue }
                    var edge = x == 0 || x == w - 1 || y == 0 || y == h - 1
                        || !mask[i - 1] || !mask[i + 1] || !mask[i - w] || !mask[i + w]
                    if d > 1 && !edge {
                        edge = z == 0 || z == d - 1 || !mask[i - h * w] || !mask[i + h * w]
                    }
                    out[i] = edge
                }
            }
        }
        return out
    }

    /// The `p`-th percentile (0–100) with numpy's linear interpolation.
    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let s = values.sorted()
        let rank = p / 100 * Double(s.count - 1)
        let i = Int(rank.rounded(.down)), j = min(s.count - 1, i + 1)
        return s[i] + (rank - Double(i)) * (s[j] - s[i])
    }

    /// Mean Dice over labels (ignoring NaN).
    public static func meanDice(_ m: [LabelMetrics]) -> Double {
        m.isEmpty ? .nan : m.reduce(0) { $0 + $1.dice } / Double(m.count)
    }
}
