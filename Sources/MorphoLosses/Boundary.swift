import MorphoKernels
import MorphoTensor

/// Signed distance maps of every class of a label map, as the boundary loss needs them (seed 004
/// `one_hot2dist`; Kervadec et al., "Boundary loss for highly unbalanced segmentation", MIDL 2019):
/// for each item n and class c, with m = (labels == c),
///
///     φ = edt(¬m)·¬m − (edt(m) − 1)·m
///
/// i.e. the distance (mm) to the class outside it and `1 − distance to the background` inside it
/// (≤ 0). Exact Euclidean distances from `MorphoKernels.signedDistance`, class by class through
/// `MorphoKernels.classSignedDistances`.
///
/// - labels: `[N, spatial...]` or `[N, 1, spatial...]`, class indices (stored as Float).
/// - spatial: the spatial shape `[H, W]` or `[D, H, W]` (needed to tell `[N, 1, H, W]` labels
///   from `[N, D, H, W]` ones).
/// - spacing: voxel size per spatial axis in mm (`[D, H, W]` order); nil: 1 mm.
/// - Returns `[N, classes, spatial...]`.
/// - Degenerate inputs: a class absent from an item (empty mask) or covering all of it gives an
///   all-zero map, so it adds nothing to the loss.
public func signedDistanceMaps(labels: Tensor, classes: Int, spatial: [Int], spacing: [Double]? = nil) -> Tensor {
    let s = spatial.reduce(1, *)
    precondition(s > 0 && labels.count % s == 0, "signedDistanceMaps: labels \(labels.shape) do not hold images of \(spatial)")
    let n = labels.count / s
    let y = classIndices(labels, items: n, spatial: s, classes: classes, "signedDistanceMaps")
    return Tensor(shape: [n, classes] + spatial) { out in
        y.withUnsafeBufferPointer { labels in
            for item in 0..<n {
                classSignedDistances(
                    labels: UnsafeBufferPointer(rebasing: labels[(item * s)..<((item + 1) * s)]), classes: classes,
                    shape: spatial, spacing: spacing, classStride: s, into: out + item * classes * s)
            }
        }
    }
}

/// Boundary (surface) loss (seed 004 `SurfaceLoss`; Kervadec et al., MIDL 2019):
///
///     L = mean_{n, c ∈ idc, v} s_θ(n, c, v) · φ_G(n, c, v)
///
/// a linear functional of the softmax probabilities weighted by the signed distance to the
/// ground-truth boundary; minimal (negative) when the prediction is exactly the ground truth.
/// Combine it with a regional loss through `AlphaSchedule` (the seed's `(1 − α)·L_R + α·L_B`).
///
/// - probs: `[N, C, H, W]` or `[N, C, D, H, W]`, softmax probabilities.
/// - distanceMaps: `[N, C, ...]` from `signedDistanceMaps` (precompute them once per sample).
/// - idc: the classes kept (default `[1]`: the background is ignored, as the seed).
/// - Reduction: mean over items, kept classes and voxels.
/// - Degenerate inputs: an item without any voxel of a kept class has a zero map and
///   contributes 0 (its gradient is 0 too).
public struct BoundaryLoss: Sendable {
    public var idc: [Int]
    /// Voxel size in mm per spatial axis (`[D, H, W]` order) used when the maps are computed here.
    public var spacing: [Double]?

    public init(idc: [Int] = [1], spacing: [Double]? = nil) {
        precondition(!idc.isEmpty, "BoundaryLoss: idc must name at least one class")
        self.idc = idc
        self.spacing = spacing
    }

    public func callAsFunction(probs: Tensor, distanceMaps: Tensor) -> Tensor {
        probs.preconditionImage("BoundaryLoss")
        precondition(distanceMaps.shape == probs.shape, "BoundaryLoss: distance maps \(distanceMaps.shape) do not match probs \(probs.shape)")
        let n = probs.shape[0], c = probs.shape[1], s = probs.spatialCount
        precondition(idc.allSatisfy { $0 >= 0 && $0 < c }, "BoundaryLoss: idc \(idc) out of 0..<\(c)")
        let p = probs.storage.pointer, phi = distanceMaps.storage.pointer
        let idc = self.idc
        let sums = blockSums(items: n, spatial: s, width: 1) { item, range, acc in
            var total = 0.0
            for k in idc {
                let base = (item * c + k) * s
                var partial: Float = 0
                for v in range { partial += p[base + v] * phi[base + v] }
                total += Double(partial)
            }
            acc[0] = total
        }
        let scale = 1 / Double(n * idc.count * s)
        let value = Tensor(scalar: Float(sums.reduce(0, +) * scale))
        return Tensor.record(value, inputs: [probs, distanceMaps]) { g in
            let f = g.item * Float(scale)
            let phi = distanceMaps.storage.pointer
            let dp = Tensor(shape: probs.shape) { out in
                out.initialize(repeating: 0, count: n * c * s)
                forEachBlock(items: n, spatial: s) { item, range in
                    for k in idc {
                        let base = (item * c + k) * s
                        for v in range { out[base + v] += f * phi[base + v] }
                    }
                }
            }
            return [dp, nil]
        }
    }

    /// The loss against a label map `[N, ...]` or `[N, 1, ...]`: computes the signed distance maps
    /// of the classes in `idc` first (two exact EDTs per item and class, with `spacing`).
    public func callAsFunction(probs: Tensor, labels: Tensor) -> Tensor {
        probs.preconditionImage("BoundaryLoss")
        let maps = signedDistanceMaps(labels: labels, classes: probs.shape[1], spatial: probs.spatialShape, spacing: spacing)
        return self(probs: probs, distanceMaps: maps)
    }
}
