/// What `morphoseg apply` and `morphoseg transform` can refuse beyond unreadable files (those are
/// `TransformFileError` and `MorphoIOError`, which name the file): one line a user can act on.
public enum TransformError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A `-t` argument that is neither `file` nor `[file,0]` / `[file,1]`.
    case badSpecification(String)
    /// Inverting a displacement field on the fly is not defined; it needs `transform invert`.
    case fieldInversion(path: String)

    public var description: String {
        switch self {
        case .badSpecification(let s):
            return "transform '\(s)': expected FILE or [FILE,0|1] (1 = use the inverse of an affine)"
        case .fieldInversion(let p):
            return "\(p): a displacement field cannot be inverted on the fly; make its inverse with `morphoseg transform invert` and list that"
        }
    }
}
