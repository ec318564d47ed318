/// One file `morphoseg register` wrote, with the convention a downstream tool must read it by.
/// `register --json` lists them under `outputs`, so a pipeline never has to guess units, axes
/// or direction.
public struct RegistrationOutput: Codable, Equatable, Sendable {
    /// What the file holds: `warped_image`, `warped_labels`, `displacement_field` or `jacobian`.
    public var kind: String
    public var path: String
    /// How to read it: grid, value type, units, axes and direction.
    public var convention: String

    public init(kind: String, path: String, convention: String) {
        self.kind = kind
        self.path = path
        self.convention = convention
    }

    /// The warped moving image: on the fixed image's grid with its header and affine; the value at
    /// a fixed voxel is the moving image, linearly interpolated, at the point the field maps it to.
    public static func warpedImage(_ path: String) -> RegistrationOutput {
        RegistrationOutput(
            kind: "warped_image", path: path,
            convention: "moving image resampled on the fixed grid (fixed header and affine), linear interpolation, float32")
    }

    /// The warped moving labels: nearest neighbour, label values kept.
    public static func warpedLabels(_ path: String) -> RegistrationOutput {
        RegistrationOutput(
            kind: "warped_labels", path: path,
            convention: "moving label map resampled on the fixed grid (fixed header and affine), nearest neighbour, label values kept")
    }

    /// The displacement field in the units it was written in.
    public static func field(_ path: String, units: FieldUnits) -> RegistrationOutput {
        switch units {
        case .mm:
            return RegistrationOutput(
                kind: "displacement_field", path: path,
                convention: "ITK/ANTs displacement field: NIfTI [x, y, z, 1, 3] float32, intent vector (1007), LPS millimetres, "
                    + "on the fixed grid, from each fixed point to its moving point (antsApplyTransforms -t FILE, morphoseg apply -t FILE)")
        case .voxels:
            return RegistrationOutput(
                kind: "displacement_field", path: path,
                convention: "MorphoSeg voxel field (intent name 'MorphoSeg voxel'): NIfTI [x, y, z, 1, 3] float32, component i "
                    + "displaces fixed-grid voxel axis i, in voxels of the fixed grid, from each fixed voxel to its moving point "
                    + "(morphoseg apply -t FILE; not read by ITK or ANTs)")
        }
    }

    /// The Jacobian determinant map of x ↦ x + u(x).
    public static func jacobian(_ path: String) -> RegistrationOutput {
        RegistrationOutput(
            kind: "jacobian", path: path,
            convention: "det of the Jacobian of the fixed-to-moving map x -> x + u(x) in world space, dimensionless float32 on "
                + "the fixed grid; <= 0 where the field folds, 1 where it preserves volume")
    }

    /// The linear stages' map as an ITK affine transform file.
    public static func affine(_ path: String) -> RegistrationOutput {
        RegistrationOutput(
            kind: "affine", path: path,
            convention: "ITK affine transform (AffineTransform_double_3_3, 2_2 in 2D; .mat as ANTs' 0GenericAffine.mat, or ITK text), "
                + "LPS millimetres, fixed point to moving point; the displacement field holds the deformable part only, "
                + "so the whole map is `morphoseg apply -t FIELD -t AFFINE` (antsApplyTransforms -t FIELD -t AFFINE)")
    }

    /// What one `register` call with these output options writes, in the order it writes them.
    public static func list(
        warped: String, labels: String?, field: String?, fieldUnits: FieldUnits, jacobian: String?, affine: String? = nil
    ) -> [RegistrationOutput] {
        [warpedImage(warped)] + (labels.map { [warpedLabels($0)] } ?? []) + (field.map { [Self.field($0, units: fieldUnits)] } ?? [])
            + (jacobian.map { [Self.jacobian($0)] } ?? []) + (affine.map { [Self.affine($0)] } ?? [])
    }
}
