import MorphoIO
import MorphoKernels

/// Voxels `[C, D, H, W]` (W fastest) with their spacing in mm along `(D, H, W)`: the working form
/// of images, labels and distance maps inside the data pipeline. The axes are the `Volume` axes
/// (`D = z, H = y, W = x`) unless a 2D pipeline has permuted them (see `permuted(_:)`).
///
/// Between the other two image types (see `MorphoIO.Volume` for all three): a `Volume` (file
/// voxels plus world geometry) becomes a `VoxelArray` through `init(_:)`, which keeps the voxels
/// and drops the affine and header; results become a `Volume` again only to be written, with the
/// geometry of their source file. Batches for the network are `Tensor`s `[N, C, D, H, W]` stacked
/// from `data` (`PatchSampler`, `SlidingWindow`, the registration and joint tasks); a
/// `VoxelArray` has no autograd and no batch axis.
public struct VoxelArray: Sendable, Equatable {
    public var data: [Float]
    public var channels: Int
    /// `[D, H, W]`.
    public var shape: [Int]
    /// Voxel size in mm along `[D, H, W]`.
    public var spacing: [Double]

    public init(data: [Float], channels: Int, shape: [Int], spacing: [Double]) {
        precondition(shape.count == 3 && spacing.count == 3, "VoxelArray is [C, D, H, W]")
        precondition(data.count == channels * shape.reduce(1, *), "VoxelArray: \(data.count) values for [\(channels)] + \(shape)")
        self.data = data
        self.channels = channels
        self.shape = shape
        self.spacing = spacing
    }

    /// The voxels of `volume`, spacing reordered to `(z, y, x)`.
    public init(_ volume: Volume) {
        self.init(
            data: volume.data, channels: volume.channels, shape: volume.spatialShape,
            spacing: AxisOrder.dhw(fromXYZ: volume.spacing))
    }

    public var spatialCount: Int { shape[0] * shape[1] * shape[2] }

    /// One channel's voxels.
    public func channel(_ c: Int) -> ArraySlice<Float> { data[(c * spatialCount)..<((c + 1) * spatialCount)] }

    /// Channels stacked: all must share shape.
    public static func stacked(_ parts: [VoxelArray]) -> VoxelArray {
        precondition(!parts.isEmpty && parts.allSatisfy { $0.shape == parts[0].shape }, "stacking arrays of different shapes")
        return VoxelArray(
            data: parts.flatMap(\.data), channels: parts.reduce(0) { $0 + $1.channels }, shape: parts[0].shape,
            spacing: parts[0].spacing)
    }

    // MARK: Axis order

    /// The array with spatial axes reordered: new axis `i` is old axis `order[i]` (a permutation of
    /// `[0, 1, 2]` in `[D, H, W]` terms). `permuted(p).permuted(inversePermutation(p))` is `self`.
    public func permuted(_ order: [Int]) -> VoxelArray {
        if order == [0, 1, 2] { return self }
        let newShape = order.map { shape[$0] }
        let oldStrides = [shape[1] * shape[2], shape[2], 1]
        let s = order.map { oldStrides[$0] }
        let n = spatialCount
        var out = [Float](repeating: 0, count: data.count)
        data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var o = 0
                for c in 0..<channels {
                    let base = c * n
                    for a in 0..<newShape[0] {
                        for b in 0..<newShape[1] {
                            var i = base + a * s[0] + b * s[1]
                            for _ in 0..<newShape[2] {
                                dst[o] = src[i]
                                o += 1
                                i += s[2]
                            }
                        }
                    }
                }
            }
        }
        return VoxelArray(data: out, channels: channels, shape: newShape, spacing: order.map { spacing[$0] })
    }

    /// The permutation that undoes `order`.
    public static func inversePermutation(_ order: [Int]) -> [Int] {
        var inv = [0, 0, 0]
        for (i, o) in order.enumerated() { inv[o] = i }
        return inv
    }

    // MARK: Crop and pad

    /// The box `origin ..< origin + size` (`[D, H, W]`); parts outside the array are filled with
    /// `fill[c]` (per channel), so crops may hang over the border.
    public func cropped(origin: [Int], size: [Int], fill: [Float]) -> VoxelArray {
        precondition(fill.count == channels, "one fill value per channel")
        var out = [Float](repeating: 0, count: channels * size.reduce(1, *))
        let n = spatialCount
        let m = size.reduce(1, *)
        // Overlap along W of each row, computed once.
        let x0 = max(0, origin[2]), x1 = min(shape[2], origin[2] + size[2])
        data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<channels {
                    let v = fill[c]
                    for z in 0..<size[0] {
                        let sz = origin[0] + z
                        for y in 0..<size[1] {
                            let sy = origin[1] + y
                            let row = c * m + (z * size[1] + y) * size[2]
                            guard sz >= 0, sz < shape[0], sy >= 0, sy < shape[1], x0 < x1 else {
                                for x in 0..<size[2] { dst[row + x] = v }
                                continue
                            }
                            for x in 0..<size[2] { dst[row + x] = v }
                            let srcRow = c * n + (sz * shape[1] + sy) * shape[2]
                            for sx in x0..<x1 { dst[row + sx - origin[2]] = src[srcRow + sx] }
                        }
                    }
                }
            }
        }
        return VoxelArray(data: out, channels: channels, shape: size, spacing: spacing)
    }

    /// Padded by `before`/`after` voxels per axis with `fill[c]`; negative amounts crop.
    public func padded(before: [Int], after: [Int], fill: [Float]) -> VoxelArray {
        let size = (0..<3).map { shape[$0] + before[$0] + after[$0] }
        return cropped(origin: before.map { -$0 }, size: size, fill: fill)
    }

    /// Per-channel minimum (the usual padding value of a normalised image).
    public var channelMinima: [Float] {
        (0..<channels).map { c in channel(c).min() ?? 0 }
    }

    // MARK: Resampling

    /// Resampled onto a grid of voxel size `newSpacing` (mm, `[D, H, W]`) covering the same extent:
    /// new size `max(1, round(n · s / s'))` per axis, voxel centres placed so that both grids span
    /// the same box (`align_corners = false`). `linear`: trilinear interpolation (images);
    /// otherwise nearest neighbour (labels). Axes of size 1 are never resampled.
    public func resampled(toSpacing newSpacing: [Double], linear: Bool) -> VoxelArray {
        let newShape = (0..<3).map { shape[$0] == 1 ? 1 : max(1, Int((Double(shape[$0]) * spacing[$0] / newSpacing[$0]).rounded())) }
        let effective = (0..<3).map { shape[$0] == 1 ? spacing[$0] : spacing[$0] * Double(shape[$0]) / Double(newShape[$0]) }
        return resampled(toShape: newShape, spacing: effective, linear: linear)
    }

    /// Resampled onto `newShape` spanning the same box (the inverse of `resampled(toSpacing:)`
    /// when `newShape` is the original shape), with MorphoKernels' `resampleAffine`: output index
    /// i maps to source coordinate `(i + 0.5)·n/n' − 0.5` per axis. Linear samples within half a
    /// voxel of the border blend towards `fill[c]` (default: each channel's minimum); nearest
    /// samples never leave the volume.
    public func resampled(toShape newShape: [Int], spacing newSpacing: [Double]? = nil, linear: Bool, fill: [Float]? = nil) -> VoxelArray {
        if newShape == shape { return self }
        let sp = newSpacing ?? (0..<3).map { spacing[$0] * Double(shape[$0]) / Double(newShape[$0]) }
        // Row-major 4×4 on (x = W, y = H, z = D) voxel indices: scale r and offset (r − 1)/2 per axis.
        let r = (0..<3).map { Double(shape[$0]) / Double(newShape[$0]) }
        let matrix: [Double] = [
            r[2], 0, 0, (r[2] - 1) / 2,
            0, r[1], 0, (r[1] - 1) / 2,
            0, 0, r[0], (r[0] - 1) / 2,
            0, 0, 0, 1,
        ]
        let fills = fill ?? channelMinima
        let n = spatialCount, m = newShape.reduce(1, *)
        let source = SpatialExtent(d: shape[0], h: shape[1], w: shape[2])
        let target = SpatialExtent(d: newShape[0], h: newShape[1], w: newShape[2])
        var out = [Float](repeating: 0, count: channels * m)
        data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<channels {
                    resampleAffine(
                        src.baseAddress! + c * n, extent: source, channels: 1, into: dst.baseAddress! + c * m,
                        targetExtent: target, targetToSource: matrix, linear: linear, fill: fills[c])
                }
            }
        }
        return VoxelArray(data: out, channels: channels, shape: newShape, spacing: sp)
    }
}

/// Trilinear interpolation in one channel `[D, H, W]` at base: the corner indices along each axis
/// and the weight `f` of the upper one.
@inline(__always)
func trilinear(
    _ base: UnsafePointer<Float>, h: Int, w: Int, z: (Int, Int, Float), y: (Int, Int, Float), x: (Int, Int, Float)
) -> Float {
    @inline(__always) func v(_ zz: Int, _ yy: Int, _ xx: Int) -> Float { base[(zz * h + yy) * w + xx] }
    let c00 = v(z.0, y.0, x.0) + x.2 * (v(z.0, y.0, x.1) - v(z.0, y.0, x.0))
    let c01 = v(z.0, y.1, x.0) + x.2 * (v(z.0, y.1, x.1) - v(z.0, y.1, x.0))
    let c10 = v(z.1, y.0, x.0) + x.2 * (v(z.1, y.0, x.1) - v(z.1, y.0, x.0))
    let c11 = v(z.1, y.1, x.0) + x.2 * (v(z.1, y.1, x.1) - v(z.1, y.1, x.0))
    let c0 = c00 + y.2 * (c01 - c00), c1 = c10 + y.2 * (c11 - c10)
    return c0 + z.2 * (c1 - c0)
}
