import MorphoIO
import MorphoTensor

/// The spatial and intensity augmentation of `data.augmentation`, applied to one training sample:
/// with probability `probability` (when `rotation` or `scaling` is set) a rotation by up to
/// ±`rotation`° and an isotropic zoom s ∈ [1 − `scaling`, 1 + `scaling`] about the box centre
/// (`SpatialTransform`: image and signed distance maps linear, distances × s, labels nearest,
/// coordinates clamped to the volume), then a mirror of each `flip` axis with probability 1/2
/// (image, labels and distances alike), then per channel `x · (1 + a) + b` with a, b uniform in
/// [−`intensity`, `intensity`] on the image only.
///
/// One home for both pipelines: `PatchSampler` augments a patch of a segmentation subject,
/// `JointTask` a whole prepared image before pairing (origin 0, size = the image's shape; labels
/// optional). Every draw comes from the generator passed in, in the order probability,
/// transform, flips, intensity, so a sample is a pure function of its stream.
struct SampleAugmentation: Sendable {
    var config: AugmentationConfig
    /// Network axis of each config axis (x, y, z), for flips.
    var axisOfFlip: [SpatialAxis: Int]
    var dims: Int

    /// `order`: the network's `[D, H, W]` axis order in terms of the volume's `(z, y, x)`
    /// (`Preprocessor.order`).
    init(_ config: AugmentationConfig, order: [Int], dims: Int) {
        self.config = config
        self.dims = dims
        var map: [SpatialAxis: Int] = [:]
        for axis in SpatialAxis.allCases { map[axis] = order.firstIndex(of: axis.tensorAxis)! }
        axisOfFlip = map
    }

    /// One sample: the box of `size` (`[D, H, W]`) at `origin` of `image` `[C, D, H, W]`, `labels`
    /// `[1, D, H, W]` (class indices) and `distances` `[K, D, H, W]` (mm), augmented unless
    /// `augment` is false (then only cropped; a box outside the volume is filled with
    /// `imageFill` per image channel, 0 for labels and distances).
    /// - Returns: `transformed`: whether the rotation/zoom was applied (then the distances are the
    ///   interpolated ones, no longer exact maps of the labels).
    func sample(
        image: VoxelArray, labels: VoxelArray?, distances: VoxelArray?, origin o: [Int], size: [Int], imageFill: [Float],
        augment: Bool, rng: inout RandomGenerator
    ) -> (image: VoxelArray, labels: VoxelArray?, distances: VoxelArray?, transformed: Bool) {
        var outImage: VoxelArray, outLabels: VoxelArray?, outDistances: VoxelArray?
        let aug = config
        var transformed = false
        if augment, aug.rotation > 0 || aug.scaling > 0, rng.uniformDouble() < aug.probability {
            let transform = SpatialTransform.random(aug, dims: dims, spacing: image.spacing, rng: &rng)
            outImage = transform.crop(image, origin: o, size: size, linear: true)
            outLabels = labels.map { transform.crop($0, origin: o, size: size, linear: false) }
            outDistances = distances.map {
                var d = transform.crop($0, origin: o, size: size, linear: true)
                // Zoomed by s, distances grow by s.
                for i in d.data.indices { d.data[i] *= Float(transform.zoom) }
                return d
            }
            transformed = true
        } else {
            outImage = image.cropped(origin: o, size: size, fill: imageFill)
            outLabels = labels.map { $0.cropped(origin: o, size: size, fill: [0]) }
            outDistances = distances.map { d in d.cropped(origin: o, size: size, fill: Array(repeating: 0, count: d.channels)) }
        }
        guard augment else { return (outImage, outLabels, outDistances, false) }
        for axis in aug.flip.sorted(by: { $0.rawValue < $1.rawValue }) where rng.uniformDouble() < 0.5 {
            let a = axisOfFlip[axis]!
            outImage.flip(axis: a)
            outLabels?.flip(axis: a)
            outDistances?.flip(axis: a)
        }
        if aug.intensity > 0 {
            let n = outImage.spatialCount
            for c in 0..<outImage.channels {
                let gain = Float(1 + rng.uniform(-aug.intensity, aug.intensity))
                let shift = Float(rng.uniform(-aug.intensity, aug.intensity))
                for i in (c * n)..<((c + 1) * n) { outImage.data[i] = outImage.data[i] * gain + shift }
            }
        }
        return (outImage, outLabels, outDistances, transformed)
    }
}

/// A rotation and isotropic zoom about the patch centre, in mm (so anisotropic voxels rotate
/// correctly).
struct SpatialTransform {
    /// Output-to-source map in voxel-index space `[D, H, W]`.
    var matrix: Matrix3
    var zoom: Double

    static func random(_ aug: AugmentationConfig, dims: Int, spacing: [Double], rng: inout RandomGenerator) -> SpatialTransform {
        let r = aug.rotation * Double.pi / 180
        let zoom = 1 + rng.uniform(-aug.scaling, aug.scaling)
        // In [D, H, W] index space: "x" of Matrix3.rotation turns the H–W plane (about D).
        let rotation: Matrix3 = dims == 3
            ? .rotation(x: rng.uniform(-r, r), y: rng.uniform(-r, r), z: rng.uniform(-r, r))
            : .rotation(x: rng.uniform(-r, r), y: 0, z: 0)
        // index offset → mm → rotate, un-zoom → index offset.
        let s = Matrix3(r0: SIMD3(spacing[0], 0, 0), r1: SIMD3(0, spacing[1], 0), r2: SIMD3(0, 0, spacing[2]))
        let sInv = Matrix3(r0: SIMD3(1 / spacing[0], 0, 0), r1: SIMD3(0, 1 / spacing[1], 0), r2: SIMD3(0, 0, 1 / spacing[2]))
        var m = sInv * rotation * s
        m.r0 /= zoom; m.r1 /= zoom; m.r2 /= zoom
        if dims == 2 { m.r0 = SIMD3(1, 0, 0); m.r1.x = 0; m.r2.x = 0 }
        return SpatialTransform(matrix: m, zoom: zoom)
    }

    /// Samples the `size` box whose unrotated position is `origin`, rotated/zoomed about its
    /// centre; coordinates outside the array are clamped to the border.
    func crop(_ a: VoxelArray, origin: [Int], size: [Int], linear: Bool) -> VoxelArray {
        let half = SIMD3(Double(size[0] - 1), Double(size[1] - 1), Double(size[2] - 1)) / 2
        let centre = SIMD3(Double(origin[0]), Double(origin[1]), Double(origin[2])) + half
        let (d, h, w) = (a.shape[0], a.shape[1], a.shape[2])
        let n = a.spatialCount, m = size.reduce(1, *)
        var out = [Float](repeating: 0, count: a.channels * m)
        a.data.withUnsafeBufferPointer { srcBuffer in
            let src = srcBuffer.baseAddress!
            var o = 0
            for z in 0..<size[0] {
                for y in 0..<size[1] {
                    for x in 0..<size[2] {
                        let p = matrix * (SIMD3(Double(z), Double(y), Double(x)) - half) + centre
                        let cz = min(max(p.x, 0), Double(d - 1))
                        let cy = min(max(p.y, 0), Double(h - 1))
                        let cx = min(max(p.z, 0), Double(w - 1))
                        if linear {
                            let z0 = Int(cz), y0 = Int(cy), x0 = Int(cx)
                            let z1 = min(z0 + 1, d - 1), y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1)
                            let fz = Float(cz - Double(z0)), fy = Float(cy - Double(y0)), fx = Float(cx - Double(x0))
                            for c in 0..<a.channels {
                                out[c * m + o] = trilinear(src + c * n, h: h, w: w, z: (z0, z1, fz), y: (y0, y1, fy), x: (x0, x1, fx))
                            }
                        } else {
                            let i = (Int(cz.rounded()) * h + Int(cy.rounded())) * w + Int(cx.rounded())
                            for c in 0..<a.channels { out[c * m + o] = src[c * n + i] }
                        }
                        o += 1
                    }
                }
            }
        }
        return VoxelArray(data: out, channels: a.channels, shape: size, spacing: a.spacing)
    }
}

extension VoxelArray {
    /// Mirrors the array along spatial axis `axis` (0 = D, 1 = H, 2 = W) in place.
    mutating func flip(axis: Int) {
        let n = shape[axis]
        guard n > 1 else { return }
        // The array is outer × n × inner along `axis`.
        let inner = shape[(axis + 1)...].reduce(1, *)
        let outer = channels * shape[..<axis].reduce(1, *)
        data.withUnsafeMutableBufferPointer { p in
            for o in 0..<outer {
                let base = o * n * inner
                for k in 0..<(n / 2) {
                    let a = base + k * inner, b = base + (n - 1 - k) * inner
                    for i in 0..<inner { p.swapAt(a + i, b + i) }
                }
            }
        }
    }
}
