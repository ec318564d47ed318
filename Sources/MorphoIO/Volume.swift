/// Voxel storage types MorphoSeg reads and writes; the raw values are nibabel's dtype names.
public enum NIfTIDatatype: String, Sendable, CaseIterable {
    case uint8, int8, int16, uint16, int32, uint32, int64, float32, float64

    /// The NIfTI `DT_*` code.
    public var code: Int32 {
        switch self {
        case .uint8: return 2       // DT_UINT8
        case .int8: return 256      // DT_INT8
        case .int16: return 4       // DT_INT16
        case .uint16: return 512    // DT_UINT16
        case .int32: return 8       // DT_INT32
        case .uint32: return 768    // DT_UINT32
        case .int64: return 1024    // DT_INT64
        case .float32: return 16    // DT_FLOAT32
        case .float64: return 64    // DT_FLOAT64
        }
    }

    /// `nil` for codes MorphoSeg does not handle (complex, RGB, float128, …).
    public init?(code: Int32) {
        guard let match = NIfTIDatatype.allCases.first(where: { $0.code == code }) else { return nil }
        self = match
    }

    public var bytesPerVoxel: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float32: return 4
        case .int64, .float64: return 8
        }
    }

    public var isInteger: Bool { self != .float32 && self != .float64 }
}

/// On-disk header layout.
public enum NIfTIFormat: String, Sendable {
    case nifti1, nifti2
}

/// The header fields of a NIfTI file that MorphoSeg keeps, as libnifti decodes them.
///
/// `dim` and `pixdim` are in NIfTI axis order `x, y, z, t, u, …` with one entry per dimension
/// (`dim.count == pixdim.count == ndim`). `qform` is the matrix the quaternion encodes (libnifti's
/// `qto_xyz`, `diag(pixdim)` when `qformCode == 0`); `sform` is `srow_x/y/z` (identity-like and
/// meaningless when `sformCode == 0`).
public struct NIfTIHeaderInfo: Equatable, Sendable {
    public var format: NIfTIFormat
    public var datatype: NIfTIDatatype
    public var dim: [Int]
    public var pixdim: [Double]
    public var qformCode: Int
    public var sformCode: Int
    public var qform: Affine
    public var sform: Affine
    /// `NIFTI_UNITS_*` codes: 2 = mm, 8 = s, 0 = unknown.
    public var xyzUnits: Int
    public var timeUnits: Int
    /// `NIFTI_INTENT_*` code (1007 = vector, 0 = none) and its name string.
    public var intentCode: Int
    public var intentName: String
    /// Effective scaling: 1 and 0 when the stored slope is 0 or NaN (the voxels are not scaled).
    public var sclSlope: Double
    public var sclInter: Double
    public var descrip: String

    public init(
        format: NIfTIFormat = .nifti1, datatype: NIfTIDatatype = .float32, dim: [Int], pixdim: [Double],
        qformCode: Int, sformCode: Int, qform: Affine, sform: Affine, xyzUnits: Int = 2, timeUnits: Int = 0,
        intentCode: Int = 0, intentName: String = "", sclSlope: Double = 1, sclInter: Double = 0,
        descrip: String = ""
    ) {
        self.format = format
        self.datatype = datatype
        self.dim = dim
        self.pixdim = pixdim
        self.qformCode = qformCode
        self.sformCode = sformCode
        self.qform = qform
        self.sform = sform
        self.xyzUnits = xyzUnits
        self.timeUnits = timeUnits
        self.intentCode = intentCode
        self.intentName = intentName
        self.sclSlope = sclSlope
        self.sclInter = sclInter
        self.descrip = descrip
    }

    /// The voxel-to-world transform a viewer uses (nibabel's rule): the sform when
    /// `sformCode > 0`, else the qform when `qformCode > 0`, else `diag(pixdim[1...3])`.
    public var bestAffine: Affine {
        if sformCode > 0 { return sform }
        if qformCode > 0 { return qform }
        return Affine.diagonal(Array(pixdim.prefix(3)))
    }
}

/// One image in memory: scaled voxel values as `Float`, plus the geometry that places it in the
/// world.
///
/// **The layout, stated once for all of MorphoSeg.** NIfTI stores voxels with `x` fastest, then
/// `y`, `z`, `t`, `u`. A `Volume` keeps that order unchanged and names the axes
/// `[C, D, H, W]`: `W = x` (NIfTI axis 1, `width`, fastest), `H = y` (axis 2, `height`),
/// `D = z` (axis 3, `depth`, 1 for 2D images), and `C` = every remaining axis collapsed,
/// `c = t + nt·(u + nu·(v + nv·w))` (time points, vector components). Voxel `(c, z, y, x)` is at
/// `data[((c * depth + z) * height + y) * width + x]`. Tensors add the batch axis in front:
/// `[N, C, D, H, W]`, and 2D data is `[N, C, H, W]` with `D = 1`. Nothing else in MorphoSeg
/// reorders axes; per-axis values written in NIfTI order `(x, y, z)` (header dims, `spacing`,
/// config sizes) become `[D, H, W]` through `AxisOrder`, the one place that reversal is written.
///
/// **Volume, VoxelArray, Tensor: one layout, three jobs.** A `Volume` is an image as a file holds
/// it, voxels plus world geometry (affine, header): what MorphoIO reads and writes, and what
/// registration places in world space. MorphoTrain's data pipeline works on `VoxelArray`: the same
/// `[C, D, H, W]` voxels with the spacing as `[D, H, W]` mm and no affine or header, made from a
/// volume by `VoxelArray.init(_:)` and turned back into one only to write a result, with the
/// geometry of the file it came from (`Segmenter`, `Volume.resampled(toSpacing:linear:)`).
/// Networks and losses take `Tensor`s (MorphoTensor), which carry no geometry: the tasks stack
/// voxel arrays' `data` into batches `[N, C, D, H, W]` (`[N, C, H, W]` in 2D) and read
/// predictions back from `scalars`. None of the three reorders the voxels.
public struct Volume: Sendable {
    /// Scaled voxel values (`stored * scl_slope + scl_inter`), layout `[C, D, H, W]`.
    public var data: [Float]
    /// NIfTI dims 4 and up (time × vector components …) collapsed.
    public var channels: Int
    /// `nz` (1 for 2D), `ny`, `nx`.
    public var depth: Int, height: Int, width: Int
    /// `(dx, dy, dz)` in mm: `pixdim[1...3]` (1 for an axis the file does not have).
    public var spacing: SIMD3<Double>
    /// Voxel `(i=x, j=y, k=z)` to world mm; see `NIfTIHeaderInfo.bestAffine` for the rule.
    public var affine: Affine
    /// The file's header (or one derived from the fields above for a fresh volume). Writers take
    /// codes, units and intent from it; the shape written always comes from `channels`, `depth`,
    /// `height`, `width`.
    public var header: NIfTIHeaderInfo

    public var is2D: Bool { depth == 1 }
    /// Voxels per channel: `depth * height * width`.
    public var spatialCount: Int { depth * height * width }
    /// The spatial shape `[D, H, W]`.
    public var spatialShape: [Int] { [depth, height, width] }

    /// A fresh volume (not read from a file). The header is derived: float32, NIfTI-1, mm units,
    /// the affine stored as sform with code 2 (aligned) and, when it is a rotation with positive
    /// scales and no shear, as qform with code 2 too (else qform code 0).
    ///
    /// - Precondition: all sizes positive and `data.count == channels * depth * height * width`.
    public init(
        channels: Int = 1, depth: Int, height: Int, width: Int, data: [Float],
        spacing: SIMD3<Double> = SIMD3(1, 1, 1), affine: Affine? = nil
    ) {
        precondition(channels > 0 && depth > 0 && height > 0 && width > 0, "Volume sizes must be positive")
        let affine = affine ?? Affine.diagonal([spacing.x, spacing.y, spacing.z])
        self.init(
            data: data, channels: channels, depth: depth, height: height, width: width, spacing: spacing,
            affine: affine,
            header: NIfTIGeometry.freshHeader(
                channels: channels, depth: depth, height: height, width: width, spacing: spacing, affine: affine))
    }

    /// Memberwise, for readers that already have a header.
    public init(
        data: [Float], channels: Int, depth: Int, height: Int, width: Int, spacing: SIMD3<Double>,
        affine: Affine, header: NIfTIHeaderInfo
    ) {
        precondition(data.count == channels * depth * height * width,
                     "Volume data has \(data.count) values, shape [\(channels), \(depth), \(height), \(width)] needs \(channels * depth * height * width)")
        self.data = data
        self.channels = channels
        self.depth = depth
        self.height = height
        self.width = width
        self.spacing = spacing
        self.affine = affine
        self.header = header
    }

    /// True when both volumes have the same spatial size `[D, H, W]` and affines equal within
    /// `tolerance` (absolute, mm). Channels may differ (an image and its label map share a grid).
    public func sameGrid(as other: Volume, tolerance: Double = 1e-4) -> Bool {
        depth == other.depth && height == other.height && width == other.width
            && affine.isApproximatelyEqual(to: other.affine, tolerance: tolerance)
    }

    /// Value at channel `c`, voxel `(z, y, x)`.
    public subscript(c: Int, z: Int, y: Int, x: Int) -> Float {
        get { data[((c * depth + z) * height + y) * width + x] }
        set { data[((c * depth + z) * height + y) * width + x] = newValue }
    }
}

/// The one axis reordering in MorphoSeg (see `Volume` for the layout): per-axis values written in
/// NIfTI order `(x, y, z)` (header `dim`/`pixdim`, `Volume.spacing`, patch sizes and spacings in
/// configs) to the tensor order `(D, H, W) = (z, y, x)`, and back. Two entries `(x, y)` give
/// `(H, W)`. The reversal is its own inverse, so `xyz(fromDHW: dhw(fromXYZ: v)) == v`.
public enum AxisOrder {
    /// `(x, y, z)` → `(D, H, W)`; `(x, y)` → `(H, W)`.
    @inlinable public static func dhw<T>(fromXYZ xyz: [T]) -> [T] { Array(xyz.reversed()) }

    /// `(D, H, W)` → `(x, y, z)`; `(H, W)` → `(x, y)`.
    @inlinable public static func xyz<T>(fromDHW dhw: [T]) -> [T] { Array(dhw.reversed()) }

    /// `(x, y, z)` → `[D, H, W]` (e.g. `Volume.spacing` in mm to a `VoxelArray`'s spacing).
    @inlinable public static func dhw<T>(fromXYZ xyz: SIMD3<T>) -> [T] { [xyz.z, xyz.y, xyz.x] }

    /// A size written `(x, y, z)` for a 3D network or `(x, y)` for a 2D one (a config's patch size
    /// or inference window) as `[D, H, W]`; a 2D size has `D = 1`.
    public static func spatialSize(fromXYZ xyz: [Int], dims: Int) -> [Int] {
        dims == 3 ? dhw(fromXYZ: Array(xyz.prefix(3))) : [1] + dhw(fromXYZ: Array(xyz.prefix(2)))
    }
}
