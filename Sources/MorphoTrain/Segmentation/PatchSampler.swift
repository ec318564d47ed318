import Foundation
import MorphoIO
import MorphoTensor

/// A training batch of a segmentation task, in the network's layout.
public struct SegmentationBatch: Sendable {
    /// `[N, C, D, H, W]` (3D) or `[N, C, H, W]` (2D), normalised intensities.
    public var images: Tensor
    /// `[N, 1, …]` class indices stored as floats.
    public var labels: Tensor
    /// `[N, K, …]` signed distance maps (mm) of each class, cropped with the patch; nil when the
    /// loss needs none.
    public var distances: Tensor?
    /// PRL target fluxes `(div_I, div_J)` of each class in `loss.boundary.idc` (`oneHot(labels,
    /// class: c)`), computed with the batch by the loader rather than on the training step; nil
    /// when PRL is off (the term then computes them from `labels`).
    public var prlTargetFluxes: [(divI: Tensor, divJ: Tensor)]? = nil
}

/// Draws training samples: a random subject, a patch origin (centred on a random foreground voxel
/// with probability `foregroundFraction`, uniform otherwise), an optional rotation/zoom about the
/// patch centre (image and distances linear, labels nearest, coordinates clamped to the volume),
/// flips and intensity jitter. 2D networks get `[1, H, W]` patches of the slice-major layout.
///
/// Every draw comes from the generator passed in, so a batch is a pure function of its seed.
public struct PatchSampler: Sendable {
    /// Patch size in the network's `[D, H, W]` layout (`D = 1` in 2D).
    public var size: [Int]
    public var foregroundFraction: Double
    public var augmentation: AugmentationConfig
    /// Network axis of each config axis (x, y, z), for flips.
    public var axisOfFlip: [SpatialAxis: Int]
    public var dims: Int

    public init(size: [Int], foregroundFraction: Double, augmentation: AugmentationConfig, order: [Int], dims: Int) {
        self.size = size
        self.foregroundFraction = foregroundFraction
        self.augmentation = augmentation
        self.dims = dims
        var map: [SpatialAxis: Int] = [:]
        for axis in SpatialAxis.allCases { map[axis] = order.firstIndex(of: axis.tensorAxis)! }
        axisOfFlip = map
    }

    /// The sampler a run config implies for `subjects` (whole slices in 2D take the largest
    /// slice among them).
    public init(_ config: RunConfig, subjects: [Subject]) {
        let dims = config.model.unet.dims
        let pre = Preprocessor(config)
        let size: [Int]
        if let s = config.data.patch.size {
            size = AxisOrder.spatialSize(fromXYZ: s, dims: dims)
        } else {
            size = [1, subjects.map { $0.shape[1] }.max() ?? 1, subjects.map { $0.shape[2] }.max() ?? 1]
        }
        self.init(
            size: size, foregroundFraction: config.data.patch.foreground, augmentation: config.data.augmentation,
            order: pre.order, dims: dims)
    }

    /// Origin (`[D, H, W]`, may be negative when the subject is smaller than the patch) of a patch
    /// in `subject`.
    public func origin(in subject: Subject, rng: inout RandomGenerator) -> [Int] {
        let shape = subject.shape
        let useForeground = !subject.foreground.isEmpty && rng.uniformDouble() < foregroundFraction
        if useForeground {
            let v = Int(subject.foreground[rng.index(subject.foreground.count)])
            let centre = [v / (shape[1] * shape[2]), (v / shape[2]) % shape[1], v % shape[2]]
            return (0..<3).map { a in
                let lo = min(0, shape[a] - size[a]), hi = max(0, shape[a] - size[a])
                return min(max(centre[a] - size[a] / 2, lo), hi)
            }
        }
        return (0..<3).map { a in
            shape[a] >= size[a] ? rng.index(shape[a] - size[a] + 1) : (shape[a] - size[a]) / 2
        }
    }

    /// One augmented sample from `subject`: image `[C, D, H, W]`, labels `[1, D, H, W]`, distances.
    public func sample(_ subject: Subject, rng: inout RandomGenerator, augment: Bool = true)
        -> (image: VoxelArray, labels: VoxelArray, distances: VoxelArray?)
    {
        let o = origin(in: subject, rng: &rng)
        var image: VoxelArray, labels: VoxelArray, distances: VoxelArray?
        let aug = augmentation
        if augment, aug.rotation > 0 || aug.scaling > 0, rng.uniformDouble() < aug.probability {
            let transform = SpatialTransform.random(aug, dims: dims, spacing: subject.image.spacing, rng: &rng)
            image = transform.crop(subject.image, origin: o, size: size, linear: true)
            labels = transform.crop(subject.labels, origin: o, size: size, linear: false)
            distances = subject.distances.map {
                var d = transform.crop($0, origin: o, size: size, linear: true)
                // Zoomed by s, distances grow by s.
                for i in d.data.indices { d.data[i] *= Float(transform.zoom) }
                return d
            }
        } else {
            image = subject.image.cropped(origin: o, size: size, fill: subject.prepared.fill)
            labels = subject.labels.cropped(origin: o, size: size, fill: [0])
            distances = subject.distances.map { d in
                d.cropped(origin: o, size: size, fill: Array(repeating: 0, count: d.channels))
            }
        }
        guard augment else { return (image, labels, distances) }
        for axis in aug.flip.sorted(by: { $0.rawValue < $1.rawValue }) where rng.uniformDouble() < 0.5 {
            let a = axisOfFlip[axis]!
            image.flip(axis: a)
            labels.flip(axis: a)
            distances?.flip(axis: a)
        }
        if aug.intensity > 0 {
            let n = image.spatialCount
            for c in 0..<image.channels {
                let gain = Float(1 + rng.uniform(-aug.intensity, aug.intensity))
                let shift = Float(rng.uniform(-aug.intensity, aug.intensity))
                for i in (c * n)..<((c + 1) * n) { image.data[i] = image.data[i] * gain + shift }
            }
        }
        return (image, labels, distances)
    }

    /// `count` samples from subjects drawn uniformly, stacked into tensors.
    public func batch(from subjects: [Subject], count: Int, rng: inout RandomGenerator, augment: Bool = true) -> SegmentationBatch {
        precondition(!subjects.isEmpty, "sampling from no subjects")
        var images: [Float] = [], labels: [Float] = [], distances: [Float] = []
        var channels = 0, classes = 0
        var hasDistances = true
        for _ in 0..<count {
            let s = subjects[rng.index(subjects.count)]
            let (i, l, d) = sample(s, rng: &rng, augment: augment)
            images += i.data
            labels += l.data
            channels = i.channels
            if let d { distances += d.data; classes = d.channels } else { hasDistances = false }
        }
        let spatial = dims == 3 ? size : [size[1], size[2]]
        return SegmentationBatch(
            images: Tensor(shape: [count, channels] + spatial, data: images),
            labels: Tensor(shape: [count, 1] + spatial, data: labels),
            distances: hasDistances ? Tensor(shape: [count, classes] + spatial, data: distances) : nil)
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
