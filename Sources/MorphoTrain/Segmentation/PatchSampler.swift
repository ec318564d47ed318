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
    public var axisOfFlip: [SpatialAxis: Int] { augmenter.axisOfFlip }
    public var dims: Int
    /// The rotation/zoom, flips and intensity jitter of `augmentation` (one home, shared with
    /// joint training).
    var augmenter: SampleAugmentation { SampleAugmentation(augmentation, order: order, dims: dims) }
    /// Network axis order (`Preprocessor.order`).
    var order: [Int]

    public init(size: [Int], foregroundFraction: Double, augmentation: AugmentationConfig, order: [Int], dims: Int) {
        self.size = size
        self.foregroundFraction = foregroundFraction
        self.augmentation = augmentation
        self.dims = dims
        self.order = order
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

    /// One augmented sample from `subject`: image `[C, D, H, W]`, labels `[1, D, H, W]`, distances
    /// — the patch origin, then `SampleAugmentation.sample` of that box.
    public func sample(_ subject: Subject, rng: inout RandomGenerator, augment: Bool = true)
        -> (image: VoxelArray, labels: VoxelArray, distances: VoxelArray?)
    {
        let o = origin(in: subject, rng: &rng)
        let s = augmenter.sample(
            image: subject.image, labels: subject.labels, distances: subject.distances, origin: o, size: size,
            imageFill: subject.prepared.fill, augment: augment, rng: &rng)
        return (s.image, s.labels!, s.distances)
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
