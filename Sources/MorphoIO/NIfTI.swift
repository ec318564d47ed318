import CNIfTI
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// NIfTI-1 and NIfTI-2 files in and out, through libnifti (which does the header parsing, byte
/// swapping, gzip and `.hdr`/`.img` pairing). Layout: see `Volume`.
public enum NIfTI {
    /// Reads `.nii`, `.nii.gz`, or a `.hdr`/`.img` pair (either name), NIfTI-1 or NIfTI-2, either
    /// byte order, datatypes `NIfTIDatatype`. Values are scaled by `scl_slope`/`scl_inter` (unless
    /// the slope is 0 or NaN). `nz == 1` (or `ndim == 2`) gives a 2D volume (`depth == 1`); time
    /// points and vector components become channels.
    ///
    /// - Throws: `NIfTIError` naming the file and the defect; the voxel byte count is checked
    ///   against the file before anything is allocated.
    public static func read(_ path: String) throws -> Volume {
        let image = try NIfTIImage.load(path)
        let header = image.header
        var converter = ScaledFloatConverter(slope: header.sclSlope, inter: header.sclInter)
        image.visit(&converter)
        let shape = image.shape
        return Volume(
            data: converter.output, channels: shape.channels, depth: shape.depth, height: shape.height,
            width: shape.width, spacing: image.spacing, affine: header.bestAffine, header: header)
    }

    /// Reads only the header (no voxel memory is allocated).
    public static func readHeader(_ path: String) throws -> NIfTIHeaderInfo {
        try NIfTIImage.open(path).header
    }

    /// Writes `volume` to a `.nii` or `.nii.gz` file, atomically (a temporary file in the same
    /// folder, renamed over `path` once complete; nothing is left behind on error).
    ///
    /// - Parameters:
    ///   - datatype: storage type. Integer types round to nearest and clamp to the type's range
    ///     (NaN → 0) with `scl_slope = 1`, `scl_inter = 0`: use them for labels (`.uint8`,
    ///     `.int16`), not for intensities that need their fractions.
    ///   - reference: a volume on the same spatial grid (`[D, H, W]` equal) whose geometry —
    ///     qform and sform with their codes, `pixdim`, units — is copied, so the output overlays
    ///     the reference in any viewer. Without it, `volume`'s own header geometry is used (or,
    ///     if `volume.affine` was changed after reading, a header derived from the affine).
    /// - Shape written: `[x, y, z]` (`[x, y]` for 2D) for one channel, `[x, y, z, C]` for several;
    ///   a volume read from a 5D file keeps its `t`/`u` split and intent.
    public static func write(
        _ volume: Volume, to path: String, datatype: NIfTIDatatype = .float32, like reference: Volume? = nil
    ) throws {
        let geometry = try NIfTIGeometry.source(for: volume, like: reference, path: path)
        var dims = volume.channels == 1
            ? (volume.is2D ? [volume.width, volume.height] : [volume.width, volume.height, volume.depth])
            : [volume.width, volume.height, volume.depth, volume.channels]
        var extraPixdim: [Double] = []
        var intent = (code: 0, name: "")
        let own = volume.header
        if own.dim.count >= 4, Array(own.dim.prefix(3)) == [volume.width, volume.height, volume.depth],
           checkedProduct(Array(own.dim.dropFirst(3))) == volume.channels {
            dims = own.dim
            extraPixdim = Array(own.pixdim.dropFirst(3))
            intent = (own.intentCode, own.intentName)
        }
        try NIfTIWriter.write(
            volume.data, dims: dims, to: path, datatype: datatype, geometry: geometry,
            extraPixdim: extraPixdim, intent: intent)
    }

    /// Writes a displacement field `[3, D, H, W]` (or `[2, 1, H, W]` in 2D) as the 5D float32
    /// NIfTI `[x, y, z, 1, 3]` with `intent_code = NIFTI_INTENT_VECTOR` (1007): the layout ANTs,
    /// ITK and nibabel expect, but not their convention for the values, which are stored
    /// unchanged in the caller's unit (ITK reads them as LPS millimetres; `ITKDisplacementField`
    /// writes that convention). Reading the file back gives `channels == 3` again. Atomic like `write`.
    public static func writeDisplacementField(_ field: Volume, to path: String, like reference: Volume? = nil) throws {
        guard field.channels == 3 || (field.is2D && field.channels == 2) else {
            throw MorphoIOError.shapeMismatch(
                path: path,
                reason: "a displacement field needs 3 channels (2 for 2D), this volume has \(field.channels)")
        }
        let geometry = try NIfTIGeometry.source(for: field, like: reference, path: path)
        try NIfTIWriter.write(
            field.data, dims: [field.width, field.height, field.depth, 1, field.channels], to: path,
            datatype: .float32, geometry: geometry, extraPixdim: [1, 1],
            intent: (Int(NIFTI_INTENT_VECTOR), "displacement"))
    }
}

/// Where the geometry written into a header comes from.
enum NIfTIGeometry {
    static let vectorIntent = Int(NIFTI_INTENT_VECTOR)

    /// The reference's header (which must share `volume`'s spatial grid) or `volume`'s own — each
    /// replaced by one derived from its `affine` and `spacing` when the caller changed those
    /// after reading, so the affine in memory is what gets written.
    static func source(for volume: Volume, like reference: Volume?, path: String) throws -> NIfTIHeaderInfo {
        let donor = reference ?? volume
        if let reference, reference.spatialShape != volume.spatialShape {
            throw MorphoIOError.shapeMismatch(
                path: path,
                reason: "reference grid (x, y, z) \(AxisOrder.xyz(fromDHW: reference.spatialShape)) differs from the volume's \(AxisOrder.xyz(fromDHW: volume.spatialShape))")
        }
        let header = donor.header
        let spacingMatches = zip(header.pixdim.prefix(3), [donor.spacing.x, donor.spacing.y, donor.spacing.z])
            .allSatisfy { abs(NIfTIImage.usableSpacing($0) - $1) <= 1e-6 * max(1, $1) }
        if header.bestAffine.isApproximatelyEqual(to: donor.affine, tolerance: 1e-9), spacingMatches {
            return header
        }
        return freshHeader(
            channels: donor.channels, depth: donor.depth, height: donor.height, width: donor.width,
            spacing: donor.spacing, affine: donor.affine)
    }

    /// The header of a volume made in memory: float32, NIfTI-1, mm, the affine as sform (code 2,
    /// aligned), and as qform (code 2) too when a rotation times `diag(spacing)` reproduces it
    /// within 1e-4 mm, else qform code 0.
    static func freshHeader(
        channels: Int, depth: Int, height: Int, width: Int, spacing: SIMD3<Double>, affine: Affine
    ) -> NIfTIHeaderInfo {
        var dim = [width, height, depth]
        var pixdim = [spacing.x, spacing.y, spacing.z]
        if channels > 1 {
            dim.append(channels)
            pixdim.append(1)
        } else if depth == 1 {
            dim.removeLast()
            pixdim.removeLast()
        }
        let quaternion = Quaternion(affine)
        let qform = quaternion.matrix(spacing: spacing)
        let representable = qform.isApproximatelyEqual(to: affine, tolerance: 1e-4)
        return NIfTIHeaderInfo(
            dim: dim, pixdim: pixdim, qformCode: representable ? 2 : 0, sformCode: 2,
            qform: representable ? qform : Affine.diagonal(Array(pixdim.prefix(3))), sform: affine,
            xyzUnits: Int(NIFTI_UNITS_MM))
    }
}

/// The NIfTI qform parameters of a matrix, computed by libnifti.
struct Quaternion {
    var b = 0.0, c = 0.0, d = 0.0, x = 0.0, y = 0.0, z = 0.0, qfac = 1.0

    init(_ affine: Affine) {
        var dx = 0.0, dy = 0.0, dz = 0.0
        nifti_dmat44_to_quatern(affine.dmat44, &b, &c, &d, &x, &y, &z, &dx, &dy, &dz, &qfac)
    }

    func matrix(spacing: SIMD3<Double>) -> Affine {
        Affine(nifti_quatern_to_dmat44(b, c, d, x, y, z, spacing.x, spacing.y, spacing.z, qfac))
    }
}

/// Builds a `nifti_image` around converted voxels and has libnifti write it.
enum NIfTIWriter {
    static func write(
        _ values: [Float], dims: [Int], to path: String, datatype: NIfTIDatatype, geometry: NIfTIHeaderInfo,
        extraPixdim: [Double], intent: (code: Int, name: String)
    ) throws {
        _ = libniftiQuiet
        let lower = path.lowercased()
        let suffix = lower.hasSuffix(".nii.gz") ? ".nii.gz" : lower.hasSuffix(".nii") ? ".nii" : ""
        guard !suffix.isEmpty else { throw MorphoIOError.unsupportedExtension(path: path, expected: ".nii or .nii.gz") }
        guard dims.count <= 7, dims.allSatisfy({ $0 >= 1 }), checkedProduct(dims) == values.count else {
            throw MorphoIOError.shapeMismatch(path: path, reason: "dims \(dims) do not match \(values.count) values")
        }
        // Always NIfTI-1: every viewer reads it, and libnifti 3.0.1 writes single-file NIfTI-2
        // with its voxels over the header (vox_offset 0). NIfTI-1 caps each axis at 32767.
        if let big = dims.first(where: { $0 > Int(Int16.max) }) {
            throw MorphoIOError.shapeMismatch(path: path, reason: "axis of \(big) voxels exceeds NIfTI-1's 32767")
        }

        var dim64 = [Int64](repeating: 1, count: 8)
        dim64[0] = Int64(dims.count)
        for (axis, n) in dims.enumerated() { dim64[axis + 1] = Int64(n) }
        guard let nim = nifti_make_new_nim(dim64, datatype.code, 0) else {
            throw MorphoIOError.writeFailed(path: path, reason: "libnifti could not make an image")
        }
        defer { nifti_image_free(nim) }

        nim.pointee.data = encode(values, as: datatype)
        apply(geometry, dims: dims, extraPixdim: extraPixdim, to: nim)
        nim.pointee.scl_slope = 0
        nim.pointee.scl_inter = 0
        nim.pointee.intent_code = Int32(intent.code)
        setString(intent.name, into: &nim.pointee.intent_name)
        setString("MorphoSeg", into: &nim.pointee.descrip)

        let needed = Int64(values.count * datatype.bytesPerVoxel)
        try FileChecks.atomicWrite(to: path, suffix: suffix) { temporary in
            // Creating the file first turns an unwritable folder into our error, not a libnifti
            // message on stderr.
            guard let probe = fopen(temporary, "wb") else {
                throw MorphoIOError.writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
            fclose(probe)
            guard nifti_set_filenames(nim, temporary, 0, 1) == 0 else {
                throw MorphoIOError.writeFailed(path: path, reason: "libnifti refused the file name")
            }
            nim.pointee.nifti_type = NIFTI_FTYPE_NIFTI1_1
            // nifti_image_write with zlib level 1 ("wb1") instead of its default: the MNI T1 as
            // float32 (35 MB) took 2.2 s at the default and 0.44 s at level 1. The returned handle
            // is already closed; libnifti's own writer frees it the same way.
            if let handle = nifti_image_write_hdr_img(nim, 1, "wb1") { free(UnsafeMutableRawPointer(handle)) }
            try verify(temporary, voxelBytes: needed, reportAs: path)
        }
    }

    /// libnifti's writer returns nothing; a read-back of the header and the file length is what
    /// tells a full disk or an unwritable folder from success.
    private static func verify(_ temporary: String, voxelBytes: Int64, reportAs path: String) throws {
        guard FileChecks.exists(temporary), let nim = nifti_image_read(temporary, 0) else {
            throw MorphoIOError.writeFailed(path: path, reason: "could not create the file (folder missing or not writable?)")
        }
        let expected = Int64(nim.pointee.iname_offset) + voxelBytes
        nifti_image_free(nim)
        let complete: Bool
        if FileChecks.isGzipName(temporary) {
            complete = FileChecks.gzipTrailerSize(of: temporary) == UInt32(truncatingIfNeeded: expected)
        } else {
            complete = FileChecks.size(of: temporary) == expected
        }
        guard complete else { throw MorphoIOError.writeFailed(path: path, reason: "incomplete file (disk full?)") }
    }

    private static func apply(
        _ g: NIfTIHeaderInfo, dims: [Int], extraPixdim: [Double], to nim: UnsafeMutablePointer<nifti_image>
    ) {
        var pixdim = [Double](repeating: 1, count: 8)
        for axis in 0..<3 where axis < g.pixdim.count && g.pixdim[axis] != 0 && g.pixdim[axis].isFinite {
            pixdim[axis + 1] = abs(g.pixdim[axis])
        }
        for (i, p) in extraPixdim.enumerated() where 4 + i < 8 { pixdim[4 + i] = p }
        withUnsafeMutableBytes(of: &nim.pointee.pixdim) { buffer in
            let d = buffer.bindMemory(to: Double.self)
            for i in 1..<8 { d[i] = pixdim[i] }
        }
        nim.pointee.dx = pixdim[1]; nim.pointee.dy = pixdim[2]; nim.pointee.dz = pixdim[3]
        nim.pointee.dt = pixdim[4]; nim.pointee.du = pixdim[5]; nim.pointee.dv = pixdim[6]; nim.pointee.dw = pixdim[7]

        nim.pointee.qform_code = Int32(g.qformCode)
        if g.qformCode > 0 {
            let q = Quaternion(g.qform)
            nim.pointee.quatern_b = q.b; nim.pointee.quatern_c = q.c; nim.pointee.quatern_d = q.d
            nim.pointee.qoffset_x = q.x; nim.pointee.qoffset_y = q.y; nim.pointee.qoffset_z = q.z
            nim.pointee.qfac = q.qfac
            nim.pointee.qto_xyz = g.qform.dmat44
        }
        nim.pointee.sform_code = Int32(g.sformCode)
        if g.sformCode > 0 { nim.pointee.sto_xyz = g.sform.dmat44 }
        nim.pointee.xyz_units = Int32(g.xyzUnits)
        nim.pointee.time_units = Int32(g.timeUnits)
    }

    /// `malloc`ed storage (libnifti frees it with `free`) holding `values` as `datatype`.
    private static func encode(_ values: [Float], as datatype: NIfTIDatatype) -> UnsafeMutableRawPointer {
        let raw = malloc(max(1, values.count * datatype.bytesPerVoxel))!
        func store<T>(_: T.Type, _ convert: (Float) -> T) {
            let out = raw.bindMemory(to: T.self, capacity: values.count)
            for i in values.indices { out[i] = convert(values[i]) }
        }
        switch datatype {
        case .uint8: store(UInt8.self) { clamped($0) }
        case .int8: store(Int8.self) { clamped($0) }
        case .int16: store(Int16.self) { clamped($0) }
        case .uint16: store(UInt16.self) { clamped($0) }
        case .int32: store(Int32.self) { clamped($0) }
        case .uint32: store(UInt32.self) { clamped($0) }
        case .int64: store(Int64.self) { clamped($0) }
        case .float32: store(Float.self) { $0 }
        case .float64: store(Double.self) { Double($0) }
        }
        return raw
    }

    /// Nearest integer, clamped to `T`'s range; NaN becomes 0.
    @inline(__always)
    private static func clamped<T: FixedWidthInteger>(_ value: Float) -> T {
        guard !value.isNaN else { return 0 }
        let r = Double(value).rounded()
        if r <= Double(T.min) { return T.min }
        if r >= Double(T.max) { return T.max }
        return T(r)
    }

    private static func setString<T>(_ string: String, into tuple: inout T) {
        withUnsafeMutableBytes(of: &tuple) { buffer in
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            let bytes = Array(string.utf8.prefix(buffer.count - 1))
            for (i, b) in bytes.enumerated() { buffer[i] = b }
        }
    }
}
