import MorphoIO

/// The steps between a file and the network, shared by training, validation and `morphoseg
/// segment` so that all three see the same input: finite check → per-channel normalisation →
/// optional resampling to the target spacing (linear for images, nearest for labels) → for 2D
/// networks, axes permuted so that slices run along `D` → padding so every in-plane axis (every
/// axis in 3D) is at least `minimumSize` and a multiple of the network's size multiple.
///
/// Slice axis and the permuted `[D, H, W]`: `z` keeps `(z, y, x)`; `y` gives `(y, z, x)`; `x` gives
/// `(x, z, y)` (rows are always the slowest remaining axis).
public struct Preprocessor: Sendable {
    public var normalization: NormalizationConfig
    /// Target spacing in mm, NIfTI order (x, y, z); nil keeps the file's spacing.
    public var targetSpacing: [Double]?
    /// 2 or 3.
    public var dims: Int
    public var sliceAxis: SpatialAxis
    /// Padded sizes are multiples of this.
    public var multiple: Int
    /// Minimum padded size in the permuted `[D, H, W]` layout (`D` ignored in 2D).
    public var minimumSize: [Int]

    public init(
        normalization: NormalizationConfig, targetSpacing: [Double]?, dims: Int, sliceAxis: SpatialAxis,
        multiple: Int, minimumSize: [Int]
    ) {
        self.normalization = normalization
        self.targetSpacing = targetSpacing
        self.dims = dims
        self.sliceAxis = sliceAxis
        self.multiple = multiple
        self.minimumSize = minimumSize
    }

    /// The preprocessing a run config implies. Volumes are padded only to the network's size
    /// multiple: patches and windows larger than a volume overhang it (filled like padding), so a
    /// small volume is not inflated with padding the network would then normalise over.
    public init(_ config: RunConfig) {
        self.init(
            normalization: config.data.normalization, targetSpacing: config.data.spacing, dims: config.model.unet.dims,
            sliceAxis: config.data.sliceAxis, multiple: config.model.unet.sizeMultiple, minimumSize: [1, 1, 1])
    }

    /// `[D, H, W]` axis order of the network's layout, in terms of the volume's `(z, y, x)`.
    public var order: [Int] {
        guard dims == 2 else { return [0, 1, 2] }
        switch sliceAxis {
        case .z: return [0, 1, 2]
        case .y: return [1, 0, 2]
        case .x: return [2, 0, 1]
        }
    }

    /// Normalises, resamples, permutes and pads an image `[C, z, y, x]` (already checked finite).
    public func prepareImage(_ raw: VoxelArray) -> PreparedImage {
        var array = raw
        normalization.apply(to: &array)
        return placeImage(array)
    }

    /// Resamples, permutes and pads an image that is already normalised.
    public func placeImage(_ normalised: VoxelArray) -> PreparedImage {
        place(normalised, linear: true, fill: nil)
    }

    /// Resamples (nearest), permutes and pads a label map the same way as the image it belongs to
    /// (`raw` has the image's raw grid).
    public func prepareLabels(_ raw: VoxelArray) -> VoxelArray {
        place(raw, linear: false, fill: [0]).array
    }

    private func place(_ raw: VoxelArray, linear: Bool, fill: [Float]?) -> PreparedImage {
        var array = raw
        if let t = targetSpacing {
            array = array.resampled(toSpacing: AxisOrder.dhw(fromXYZ: t), linear: linear)
        }
        let resampledShape = array.shape
        array = array.permuted(order)
        var before = [0, 0, 0], after = [0, 0, 0]
        for axis in (dims == 2 ? 1 : 0)..<3 {
            let n = array.shape[axis]
            var target = max(n, minimumSize[axis])
            target = (target + multiple - 1) / multiple * multiple
            before[axis] = (target - n) / 2
            after[axis] = target - n - before[axis]
        }
        let padFill = fill ?? array.channelMinima
        if before != [0, 0, 0] || after != [0, 0, 0] {
            array = array.padded(before: before, after: after, fill: padFill)
        }
        return PreparedImage(
            array: array, rawShape: raw.shape, rawSpacing: raw.spacing, resampledShape: resampledShape, order: order,
            padBefore: before, padAfter: after, fill: padFill)
    }
}

/// An image in the network's layout plus what it takes to map results back to the file's grid.
public struct PreparedImage: Sendable {
    /// Normalised voxels `[C, D, H, W]` in the network's layout.
    public var array: VoxelArray
    /// `[D, H, W]` = `(z, y, x)` of the file's grid, and its spacing.
    public var rawShape: [Int]
    public var rawSpacing: [Double]
    /// `(z, y, x)` shape after resampling (equal to `rawShape` without a target spacing).
    public var resampledShape: [Int]
    public var order: [Int]
    public var padBefore: [Int]
    public var padAfter: [Int]
    /// Per-channel value used for padding (also the fill for windows over the border).
    public var fill: [Float]

    /// Removes the padding of an array in the network's layout (any channel count).
    public func unpadded(_ a: VoxelArray) -> VoxelArray {
        a.padded(before: padBefore.map { -$0 }, after: padAfter.map { -$0 }, fill: Array(repeating: 0, count: a.channels))
    }

    /// An array in the network's layout (e.g. class probabilities or labels) back on the file's
    /// grid: padding removed, axes restored, resampled to the raw shape (`linear` for
    /// probabilities, renormalised to sum to 1 over channels; nearest for labels).
    public func restored(_ a: VoxelArray, linear: Bool) -> VoxelArray {
        var out = unpadded(a).permuted(VoxelArray.inversePermutation(order))
        if out.shape != rawShape {
            out = out.resampled(toShape: rawShape, spacing: rawSpacing, linear: linear, fill: Array(repeating: 0, count: out.channels))
            if linear && out.channels > 1 { out.renormalizeChannels() }
        }
        out.spacing = rawSpacing
        return out
    }
}

extension VoxelArray {
    /// Divides every voxel's channels by their sum (voxels summing to 0 are left alone).
    mutating func renormalizeChannels() {
        let n = spatialCount
        for i in 0..<n {
            var total: Float = 0
            for c in 0..<channels { total += data[c * n + i] }
            guard total > 0 else { continue }
            for c in 0..<channels { data[c * n + i] /= total }
        }
    }
}
