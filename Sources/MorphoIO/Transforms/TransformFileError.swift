/// Why a transform file (ITK text, ITK/ANTs `.mat`, displacement field) was refused: one line
/// naming the file, `"<path>: <what is wrong>"`.
public enum TransformFileError: Error, CustomStringConvertible, Equatable, Sendable {
    case fileNotFound(path: String)
    /// The bytes do not follow the format (`reason` says where).
    case malformed(path: String, reason: String)
    /// A well-formed file holding a transform kind MorphoSeg does not handle (Euler, BSpline, …).
    case unsupportedTransform(path: String, name: String)
    /// A file name whose extension names no transform format MorphoSeg reads or writes.
    case unsupportedExtension(path: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let p): return "\(p): no such file"
        case .malformed(let p, let reason): return "\(p): not a readable transform file: \(reason)"
        case .unsupportedTransform(let p, let name):
            return "\(p): transform \(name) is not supported (affine: AffineTransform_*, MatrixOffsetTransformBase_*)"
        case .unsupportedExtension(let p):
            return "\(p): unknown transform file type (expected .txt or .tfm (ITK text), .mat (ITK/ANTs binary), .nii or .nii.gz (displacement field))"
        case .writeFailed(let p, let reason): return "\(p): write failed: \(reason)"
        }
    }
}
