import MorphoIO
import MorphoKernels
import MorphoTensor

/// Random smooth deformations with a known ground truth, for demos, tests and sanity checks of
/// a registration: white noise smoothed by repeated box filters (three passes approach a
/// Gaussian of σ ≈ `smoothing` / 2 voxels), scaled so its largest displacement is
/// `maxDisplacement` voxels, then optionally integrated as a stationary velocity field by scaling
/// and squaring so the result is diffeomorphic (no folding) whatever the amplitude.
public struct SmoothRandomField: Sendable, Equatable {
    /// Box window (odd, voxels) of each of the three smoothing passes.
    public var smoothing: Int
    /// Largest displacement (velocity, before integration) along any axis, in voxels.
    public var maxDisplacement: Float
    /// Scaling-and-squaring steps (0: use the smoothed noise as the displacement directly).
    public var integrationSteps: Int

    public init(smoothing: Int = 15, maxDisplacement: Float = 4, integrationSteps: Int = 7) {
        precondition(smoothing >= 1 && smoothing % 2 == 1, "smoothing window must be odd and positive")
        self.smoothing = smoothing
        self.maxDisplacement = maxDisplacement
        self.integrationSteps = integrationSteps
    }

    /// A displacement field `[1, nd, spatial…]` (voxels) on a grid of `spatial` (`[H, W]` or
    /// `[D, H, W]`), drawn from `rng`.
    public func sample(spatial: [Int], using rng: inout RandomGenerator) -> Tensor {
        let nd = spatial.count
        var noise = Tensor.randomNormal([1, nd] + spatial, std: 1, using: &rng)
        for _ in 0..<3 { noise = noise.boxSum(window: smoothing) }
        let largest = noise.withUnsafeBufferPointer { $0.reduce(Float(0)) { max($0, abs($1)) } }
        let velocity = noise * (largest > 0 ? maxDisplacement / largest : 0)
        return integrate(velocity, steps: integrationSteps)
    }
}

/// A pair made by deforming one image (and its labels) with two independent random fields:
/// `fixed = image∘(id + u_f)`, `moving = image∘(id + u_m)`. The labels follow the same fields
/// with nearest-neighbour sampling, so Dice before and after registration is measurable.
public struct SyntheticPair: Sendable {
    /// `[1, 1, spatial…]`.
    public var fixed: Tensor
    public var moving: Tensor
    /// `[1, 1, spatial…]` integer labels (as Float), or nil.
    public var fixedLabels: Tensor?
    public var movingLabels: Tensor?
    /// The fields used, `[1, nd, spatial…]` voxels.
    public var fixedField: Tensor
    public var movingField: Tensor

    /// - Parameters:
    ///   - image: `[1, 1, spatial…]`.
    ///   - labels: `[1, 1, spatial…]` or nil.
    ///   - deformFixed: false keeps `image` as the fixed image (atlas-to-deformed-copy pairs).
    public init(image: Tensor, labels: Tensor?, field: SmoothRandomField, deformFixed: Bool = true,
                using rng: inout RandomGenerator) {
        let spatial = image.spatialShape
        let nd = spatial.count
        fixedField = deformFixed ? field.sample(spatial: spatial, using: &rng) : .zeros([1, nd] + spatial)
        movingField = field.sample(spatial: spatial, using: &rng)
        fixed = deformFixed ? warp(image, fixedField, mode: .linear) : image
        moving = warp(image, movingField, mode: .linear)
        if let labels {
            fixedLabels = deformFixed ? warp(labels, fixedField, mode: .nearest) : labels
            movingLabels = warp(labels, movingField, mode: .nearest)
        }
    }
}

/// Tissue probability maps (e.g. the MNI152 GM and WM maps) as one label map.
public enum TissueLabels {
    /// Label `k` (1-based, in the order of `maps`) where map `k` is the most probable class,
    /// background (`1 − Σ maps`, clamped at 0) included; 0 where background wins. Maps are
    /// probabilities in [0, 1]; maps stored as bytes (the MNI152 maps are ×255) are recognised by
    /// a maximum above 1 and divided by 255. All maps share one grid; the result has its geometry.
    public static func fromProbabilityMaps(_ maps: [Volume]) -> Volume {
        precondition(!maps.isEmpty && maps.allSatisfy { $0.spatialShape == maps[0].spatialShape }, "maps on one grid")
        let count = maps[0].spatialCount
        let largest = maps.map { $0.data.max() ?? 0 }.max() ?? 0
        let scale: Float = largest > 1 ? 1 / 255 : 1
        var labels = [Float](repeating: 0, count: count)
        for v in 0..<count {
            var total: Float = 0
            var best: Float = 0, bestLabel = 0
            for (k, map) in maps.enumerated() {
                let p = map.data[v] * scale
                total += p
                if p > best { best = p; bestLabel = k + 1 }
            }
            if best > max(0, 1 - total) { labels[v] = Float(bestLabel) }
        }
        return maps[0].replacingData(with: Tensor(shape: [count], data: labels))
    }
}

/// A file-level test pair with a known deformation: `fixed` is an image, `moving` the same image
/// warped by `field` (`moving(p) = fixed(p + u(p))`), labels alike (nearest). Registering
/// `moving` onto `fixed` should recover (approximately) the inverse of `field`.
public struct SyntheticVolumePair: Sendable {
    public var fixed: Volume
    public var moving: Volume
    public var fixedLabels: Volume?
    public var movingLabels: Volume?
    /// `[1, nd, spatial…]` voxels.
    public var field: Tensor

    /// Largest displacement component of `field`, voxels.
    public var largestDisplacement: Float { field.withUnsafeBufferPointer { $0.reduce(0) { max($0, abs($1)) } } }

    /// Writes the pair (float32 images, int16 labels, the field in voxels); `nil` paths are skipped.
    public func write(fixed f: String, moving m: String, fixedLabels fl: String?, movingLabels ml: String?, field fd: String?) throws {
        try NIfTI.write(fixed, to: f)
        try NIfTI.write(moving, to: m, like: fixed)
        if let fl, let fixedLabels { try NIfTI.write(fixedLabels, to: fl, datatype: .int16, like: fixed) }
        if let ml, let movingLabels { try NIfTI.write(movingLabels, to: ml, datatype: .int16, like: fixed) }
        if let fd {
            try NIfTI.writeDisplacementField(DisplacementFieldVolume.volume(fromFlow: field, on: fixed), to: fd, like: fixed)
        }
    }
}

extension SyntheticPair {
    /// `image` and a copy of it deformed by a field drawn from `field` with `seed`; with
    /// `misalignment`, the copy is also moved by it after the deformation (the written field is
    /// then the total map, `SyntheticMisalignment.totalField`), and with `contrast` its intensities
    /// are remapped before warping (`SyntheticContrast`; labels place the knots). Labels follow
    /// the same total map, nearest-neighbour. The smooth field of a seed is the same with or
    /// without misalignment.
    ///
    /// - Throws: `MorphoTrainError.labelGridMismatch` when `labels` is not on `image`'s grid,
    ///   `.notSingleChannel`, `.nonFiniteVoxels`, `.invalidOption` from `contrast`.
    public static func deforming(
        _ image: Volume, labels: Volume?, field: SmoothRandomField, seed: UInt64,
        misalignment: SyntheticMisalignment? = nil, contrast: SyntheticContrast = .t1
    ) throws -> SyntheticVolumePair {
        try RegistrationPair.checkImage(image, path: "<image>")
        if let labels { try RegistrationPair.checkLabels(labels, path: "<labels>", image: image, imagePath: "<image>") }
        var rng = RandomGenerator(seed: seed)
        let source = image.imageTensor
        let smooth = field.sample(spatial: source.spatialShape, using: &rng)
        let total = misalignment.map { $0.totalField(after: smooth, on: image) } ?? smooth
        let contrasted = try contrast.apply(to: source, labels: labels?.imageTensor)
        return SyntheticVolumePair(
            fixed: image.replacingData(with: source), moving: image.replacingData(with: warp(contrasted, total, mode: .linear)),
            fixedLabels: labels.map { image.replacingData(with: $0.imageTensor) },
            movingLabels: labels.map { image.replacingData(with: warp($0.imageTensor, total, mode: .nearest)) }, field: total)
    }
}
