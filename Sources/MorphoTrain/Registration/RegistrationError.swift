/// What a registration can refuse, one case per problem, each naming the file(s) or key
/// involved so that `description` is one line a user can act on.
public enum RegistrationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No voxel of the moving image lands on the fixed image's grid once both are placed in
    /// world coordinates through their affines.
    case noOverlap(fixed: String, moving: String)
    /// The image holds NaN or infinite voxels (`count` of them).
    case nonFiniteVoxels(path: String, count: Int)
    /// A label map whose grid (size or affine) differs from its image's.
    case labelGridMismatch(labels: String, image: String, labelShape: [Int], imageShape: [Int])
    /// Registration works on single-channel images.
    case notSingleChannel(path: String, channels: Int)
    /// One image is 2D and the other 3D.
    case dimensionalityMismatch(fixed: String, moving: String)
    /// A displacement-field file whose channel count is not its number of spatial axes.
    case notADisplacementField(path: String, channels: Int, axes: Int)
    /// The model's input or output does not fit the pair (channels, dimensionality).
    case modelMismatch(path: String, reason: String)
    /// A bad option or config value; `key` is its name.
    case invalidOption(key: String, reason: String)

    public var description: String {
        switch self {
        case .noOverlap(let fixed, let moving):
            return "\(moving): does not overlap \(fixed) in world coordinates (check the affines / orientation)"
        case .nonFiniteVoxels(let path, let count):
            return "\(path): \(count) NaN or infinite voxel\(count == 1 ? "" : "s")"
        case .labelGridMismatch(let labels, let image, let ls, let ish):
            return "\(labels): label map grid \(ls) differs from its image \(image) \(ish) (size or affine)"
        case .notSingleChannel(let path, let channels):
            return "\(path): registration needs a single-channel image, this one has \(channels) channels"
        case .dimensionalityMismatch(let fixed, let moving):
            return "\(moving): one of \(fixed) and this image is 2D, the other 3D"
        case .notADisplacementField(let path, let channels, let axes):
            return "\(path): not a displacement field (\(channels) components for \(axes) spatial axes)"
        case .modelMismatch(let path, let reason):
            return "\(path): \(reason)"
        case .invalidOption(let key, let reason):
            return "\(key): \(reason)"
        }
    }
}
