import Foundation

/// A dense displacement field in ITK's convention, the form ANTs writes as `1Warp.nii.gz` and
/// `antsApplyTransforms`, ITK-SNAP and Slicer read.
///
/// **The convention.** A NIfTI file of shape `[x, y, z, 1, D]` (2D: `[x, y, 1, 1, 2]`),
/// float32, `intent_code` 1007 (`NIFTI_INTENT_VECTOR`). At the point `x` of each voxel of the
/// field's grid (its own affine; usually the fixed image's grid), the D components are the
/// displacement `u(x)` in **LPS millimetres** (component 0 along L = −x_RAS, 1 along
/// P = −y_RAS, 2 along S), and `x + u(x)` is the matching point of the moving (input) image:
/// the field maps fixed → moving, as an `ITKAffineTransform` does. Between voxels ITK
/// interpolates the field linearly; outside the grid the displacement is zero.
///
/// **MorphoSeg's voxel form** (what `morphoseg register --field-units voxels` writes, and all
/// MorphoSeg fields written before this convention): the same layout, but component `i` is the
/// displacement along NIfTI voxel axis `i` in voxels of the field's grid. It is recognised by
/// its `intent_name` (`voxelIntentName`, or `legacyIntentName` of older files) and converted on
/// reading. In memory, `volume` always holds the LPS-mm form.
public struct ITKDisplacementField: Sendable {
    /// `intent_name` of MorphoSeg's voxel form.
    public static let voxelIntentName = "MorphoSeg voxel"
    /// `intent_name` MorphoSeg wrote before the ITK convention (its default unit was voxels).
    public static let legacyIntentName = "displacement"
    /// `intent_name` written with the ITK convention (ITK itself ignores it).
    public static let lpsIntentName = "ITK LPS mm"

    /// The field on its grid: `channels == dimension`, component `c` = displacement along LPS
    /// axis `c` in mm, layout `[C, D, H, W]` (see `Volume`).
    public var volume: Volume

    /// 2 for a 2D field (`depth == 1`, 2 components), else 3.
    public var dimension: Int { volume.is2D && volume.channels == 2 ? 2 : 3 }

    /// - Precondition: `volume.channels` is 3, or 2 on a 2D grid.
    public init(lps volume: Volume) {
        precondition(volume.channels == 3 || (volume.is2D && volume.channels == 2),
                     "a displacement field has 3 components (2 in 2D), not \(volume.channels)")
        self.volume = volume
    }

    /// A zero field on `grid`'s spatial grid and geometry.
    public static func zero(on grid: Volume) -> ITKDisplacementField {
        let d = grid.is2D ? 2 : 3
        return ITKDisplacementField(lps: Self.fieldVolume(
            on: grid, data: [Float](repeating: 0, count: d * grid.spatialCount), components: d))
    }

    // MARK: Voxel form

    /// From MorphoSeg's voxel form: `voxels` has one channel per NIfTI axis (x, y[, z]), each the
    /// displacement along that voxel axis in voxels of `voxels`' grid. The LPS displacement is
    /// `F · L · d` with `L` the linear part of the grid's affine (2D: its in-plane block) and
    /// `F = diag(−1, −1[, 1])`.
    public init(voxels: Volume) {
        let d = voxels.is2D && voxels.channels == 2 ? 2 : 3
        precondition(voxels.channels == d, "a displacement field has \(d) components, not \(voxels.channels)")
        let m = Self.voxelToLPS(voxels.affine, d)
        self.init(lps: Self.fieldVolume(
            on: voxels, data: Self.transform(voxels.data, by: m, components: d, count: voxels.spatialCount), components: d))
    }

    /// MorphoSeg's voxel form of this field (inverse of `init(voxels:)`).
    public var voxels: Volume {
        let d = dimension
        let m = Self.invert(Self.voxelToLPS(volume.affine, d), d)
        var out = Self.fieldVolume(
            on: volume, data: Self.transform(volume.data, by: m, components: d, count: volume.spatialCount), components: d)
        out.header.intentName = Self.voxelIntentName
        return out
    }

    // MARK: Files

    /// Reads an ITK/ANTs field (any `intent_name` but MorphoSeg's voxel names) or a MorphoSeg
    /// voxel field (converted to LPS mm).
    ///
    /// - Throws: `MorphoIOError.malformed` unless the file holds 3 components per voxel
    ///   (2 on a 2D grid); NIfTI errors as `NIfTI.read`.
    public static func read(_ path: String) throws -> ITKDisplacementField {
        let volume = try NIfTI.read(path)
        let d = volume.is2D ? 2 : 3
        guard volume.channels == 3 || volume.channels == d else {
            throw MorphoIOError.badTransformFile(
                path: path, reason: "a \(d)D displacement field needs \(d) components per voxel, this file has \(volume.channels)")
        }
        if isVoxelForm(volume.header) { return ITKDisplacementField(voxels: volume) }
        return ITKDisplacementField(lps: volume)
    }

    /// True for the `intent_name`s of MorphoSeg's voxel form.
    public static func isVoxelForm(_ header: NIfTIHeaderInfo) -> Bool {
        header.intentName == voxelIntentName || header.intentName == legacyIntentName
    }

    /// Writes the field in ITK's convention: `[x, y, z, 1, D]` float32, intent 1007, LPS mm.
    /// `reference`, when given, must share the field's spatial grid; its geometry (qform, sform,
    /// codes) is copied as `NIfTI.write` does.
    public func write(to path: String, like reference: Volume? = nil) throws {
        var out = volume
        out.header.intentName = Self.lpsIntentName
        try NIfTI.write(out, to: path, like: reference)
    }

    /// Writes MorphoSeg's voxel form (components along voxel axes, voxels), named as such.
    public func writeVoxels(to path: String, like reference: Volume? = nil) throws {
        try NIfTI.write(voxels, to: path, like: reference)
    }

    /// Writes a field already in the voxel form (`voxels`: one channel per NIfTI axis, voxels of
    /// its grid) as `[x, y, z, 1, D]` float32, intent 1007, named `voxelIntentName`.
    public static func writeVoxelForm(_ voxels: Volume, to path: String, like reference: Volume? = nil) throws {
        let d = voxels.is2D && voxels.channels == 2 ? 2 : 3
        guard voxels.channels == d else {
            throw MorphoIOError.shapeMismatch(path: path, reason: "a displacement field needs \(d) components, this volume has \(voxels.channels)")
        }
        var out = fieldVolume(on: voxels, data: voxels.data, components: d)
        out.header.intentName = voxelIntentName
        try NIfTI.write(out, to: path, like: reference)
    }

    // MARK: Helpers

    /// A `components`-channel field volume on `grid`'s geometry with the 5D vector header.
    static func fieldVolume(on grid: Volume, data: [Float], components: Int) -> Volume {
        var header = grid.header
        header.dim = [grid.width, grid.height, grid.depth, 1, components]
        header.pixdim = [grid.spacing.x, grid.spacing.y, grid.spacing.z, 1, 1]
        header.datatype = .float32
        header.intentCode = 1007
        header.intentName = lpsIntentName
        header.sclSlope = 1
        header.sclInter = 0
        return Volume(
            data: data, channels: components, depth: grid.depth, height: grid.height, width: grid.width,
            spacing: grid.spacing, affine: grid.affine, header: header)
    }

    /// `F · L` (row-major `d×d`): voxel-axis displacement (voxels) → LPS displacement (mm).
    static func voxelToLPS(_ affine: Affine, _ d: Int) -> [Double] {
        var m = [Double](repeating: 0, count: d * d)
        for r in 0..<d {
            for c in 0..<d { m[r * d + c] = (r < 2 ? -1 : 1) * affine.matrix[r][c] }
        }
        return m
    }

    /// The inverse of a row-major 2×2 or 3×3 matrix.
    static func invert(_ m: [Double], _ d: Int) -> [Double] {
        if d == 2 {
            let det = m[0] * m[3] - m[1] * m[2]
            return [m[3] / det, -m[1] / det, -m[2] / det, m[0] / det]
        }
        var full = Affine.identity.matrix
        for r in 0..<3 { for c in 0..<3 { full[r][c] = m[r * 3 + c] } }
        let inv = Affine(matrix: full).inverse
        return (0..<9).map { inv.matrix[$0 / 3][$0 % 3] }
    }

    /// `out[:, v] = m · data[:, v]` for every voxel `v` (channel-major `[d, count]`).
    static func transform(_ data: [Float], by m: [Double], components d: Int, count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: d * count)
        data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                if d == 3 {
                    let (m0, m1, m2, m3, m4, m5, m6, m7, m8) = (m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8])
                    for v in 0..<count {
                        let x = Double(src[v]), y = Double(src[count + v]), z = Double(src[2 * count + v])
                        dst[v] = Float(m0 * x + m1 * y + m2 * z)
                        dst[count + v] = Float(m3 * x + m4 * y + m5 * z)
                        dst[2 * count + v] = Float(m6 * x + m7 * y + m8 * z)
                    }
                } else {
                    let (m0, m1, m2, m3) = (m[0], m[1], m[2], m[3])
                    for v in 0..<count {
                        let x = Double(src[v]), y = Double(src[count + v])
                        dst[v] = Float(m0 * x + m1 * y)
                        dst[count + v] = Float(m2 * x + m3 * y)
                    }
                }
            }
        }
        return out
    }
}
