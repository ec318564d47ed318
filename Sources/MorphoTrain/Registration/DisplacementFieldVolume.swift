import MorphoIO
import MorphoTensor

/// The unit a displacement field is written in.
public enum FieldUnits: String, CaseIterable, Codable, Sendable {
    /// Voxels of the fixed grid, along its NIfTI axes (MorphoSeg's own unit).
    case voxels
    /// Millimetres in world coordinates: here (`DisplacementFieldVolume`) the voxel displacement
    /// multiplied by the linear part of the fixed image's affine (NIfTI's RAS); in files that
    /// `RegistrationResult.write` makes, ITK's LPS convention (`ITKDisplacementField`).
    case mm
}

/// Conversion between a flow tensor and a NIfTI displacement-field volume.
///
/// A flow tensor is `[1, nd, D, H, W]` (or `[1, 2, H, W]` in 2D) in voxels with **channel `i`
/// displacing tensor axis `i`**: channel 0 moves along D = z, channel 1 along H = y, channel 2
/// along W = x (VoxelMorph's convention). A NIfTI vector field `[x, y, z, 1, 3]` has
/// **component `i` displacing NIfTI axis `i`**: component 0 along x, 1 along y, 2 along z. So
/// component `c` is channel `nd − 1 − c`: the channel order reverses, nothing else moves (both
/// keep x fastest in memory, see `Volume`).
public enum DisplacementFieldVolume {
    /// The volume `NIfTI.writeDisplacementField` writes: `nd` channels in NIfTI component order
    /// (x, y, z), on `grid`'s geometry (spacing and affine).
    ///
    /// - Parameters:
    ///   - flow: `[1, nd, spatial…]` in voxels of `grid`, spatial shape equal to `grid`'s.
    ///   - units: `.mm` multiplies each voxel displacement `(u_x, u_y, u_z)` by the 3×3 linear
    ///     part of `grid.affine` (in 2D, its in-plane 2×2 block).
    public static func volume(fromFlow flow: Tensor, on grid: Volume, units: FieldUnits = .voxels) -> Volume {
        let (n, nd, spatial) = RegistrationMetrics.flowGeometry(flow)
        precondition(n == 1, "one field at a time, got a batch of \(n)")
        precondition(spatial.reduce(1, *) == grid.spatialCount && (nd == 3 ? spatial == grid.spatialShape : grid.is2D),
                     "flow \(flow.shape) is not on the grid \(grid.spatialShape)")
        let count = grid.spatialCount
        let linear = units == .mm ? linearPart(grid.affine, nd) : identity(nd)
        var data = [Float](repeating: 0, count: nd * count)
        flow.withUnsafePointer { u in
            data.withUnsafeMutableBufferPointer { out in
                for v in 0..<count {
                    // Displacement along NIfTI axes (x, y[, z]) in voxels.
                    var voxel = SIMD3<Double>()
                    for c in 0..<nd { voxel[c] = Double(u[(nd - 1 - c) * count + v]) }
                    for r in 0..<nd {
                        var acc = 0.0
                        for c in 0..<nd { acc += linear[r][c] * voxel[c] }
                        out[r * count + v] = Float(acc)
                    }
                }
            }
        }
        var volume = Volume(
            channels: nd, depth: grid.depth, height: grid.height, width: grid.width, data: data,
            spacing: grid.spacing, affine: grid.affine)
        volume.header.intentCode = 1007
        volume.header.intentName = "displacement"
        return volume
    }

    /// The inverse of `volume(fromFlow:on:units:)`: a flow tensor `[1, nd, spatial…]` in voxels
    /// from a displacement-field volume whose channels are NIfTI components (as
    /// `NIfTI.read` returns a `[x, y, z, 1, 3]` file), expressed in `units` on its own grid.
    ///
    /// - Throws: `MorphoTrainError.notADisplacementField` when the channel count is not the
    ///   number of spatial axes.
    public static func flow(from field: Volume, units: FieldUnits = .voxels, path: String = "<field>") throws -> Tensor {
        let nd = field.is2D ? 2 : 3
        guard field.channels == nd else {
            throw MorphoTrainError.notADisplacementField(path: path, channels: field.channels, axes: nd)
        }
        let count = field.spatialCount
        let linear = units == .mm ? inverse(linearPart(field.affine, nd)) : identity(nd)
        let spatial = nd == 3 ? field.spatialShape : [field.height, field.width]
        return Tensor(shape: [1, nd] + spatial) { out in
            field.data.withUnsafeBufferPointer { d in
                for v in 0..<count {
                    for c in 0..<nd {
                        var acc = 0.0
                        for k in 0..<nd { acc += linear[c][k] * Double(d[k * count + v]) }
                        out[(nd - 1 - c) * count + v] = Float(acc)
                    }
                }
            }
        }
    }

    /// Rows/columns in NIfTI axis order (x, y[, z]).
    static func linearPart(_ affine: Affine, _ nd: Int) -> [[Double]] {
        (0..<nd).map { r in (0..<nd).map { c in affine.matrix[r][c] } }
    }

    static func identity(_ nd: Int) -> [[Double]] {
        (0..<nd).map { r in (0..<nd).map { c in r == c ? 1 : 0 } }
    }

    static func inverse(_ m: [[Double]]) -> [[Double]] {
        if m.count == 2 {
            let det = m[0][0] * m[1][1] - m[0][1] * m[1][0]
            return [[m[1][1] / det, -m[0][1] / det], [-m[1][0] / det, m[0][0] / det]]
        }
        let full = Affine(matrix: [m[0] + [0], m[1] + [0], m[2] + [0], [0, 0, 0, 1]]).inverse
        return (0..<3).map { r in (0..<3).map { c in full.matrix[r][c] } }
    }
}
