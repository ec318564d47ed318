import MorphoIO
import MorphoTensor

/// The Jacobian determinant of a displacement field's mapping `x ↦ x + u(x)`.
public enum FieldJacobian {
    /// `det(∂(x + u)/∂x)` at every voxel of the field's grid, as a float volume with the grid's
    /// geometry: the local volume ratio (1 = volume kept, < 1 compression, ≤ 0 a fold). The
    /// determinant is the same in voxel and physical coordinates, so it is computed on the voxel
    /// form with `RegistrationMetrics.jacobianDeterminant` (central differences inside, one-sided
    /// on the faces).
    ///
    /// - Throws: `MorphoTrainError.notADisplacementField` for a 3-component field on a 2D grid.
    public static func determinant(of field: ITKDisplacementField) throws -> Volume {
        let grid = field.volume
        let flow = try DisplacementFieldVolume.flow(from: field.voxels, units: .voxels)
        let det = RegistrationMetrics.jacobianDeterminant(flow)
        var header = grid.header
        header.dim = Array(grid.header.dim.prefix(grid.is2D ? 2 : 3))
        header.pixdim = Array(grid.header.pixdim.prefix(grid.is2D ? 2 : 3))
        header.intentCode = 0
        header.intentName = "Jacobian det"
        header.datatype = .float32
        return Volume(
            data: det.scalars, channels: 1, depth: grid.depth, height: grid.height, width: grid.width,
            spacing: grid.spacing, affine: grid.affine, header: header)
    }
}
