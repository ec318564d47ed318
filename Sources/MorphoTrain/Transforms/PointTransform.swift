import Foundation
import MorphoIO

/// One transform of an `antsApplyTransforms`-style list: an affine or a dense displacement
/// field, both mapping points of the fixed (reference) space to the moving (input) space in
/// LPS millimetres (see `ITKAffineTransform`, `ITKDisplacementField`).
public enum PointTransform: Sendable {
    case affine(ITKAffineTransform)
    case field(ITKDisplacementField)

    /// 2 or 3.
    public var dimension: Int {
        switch self {
        case .affine(let a): return a.dimension
        case .field(let f): return f.dimension
        }
    }

    /// Loads one `-t` argument: `FILE`, or `[FILE,1]` for the inverse of an affine (`[FILE,0]`
    /// is `FILE`), optionally inverted again by `invert` (`--invert N`). `.mat`, `.txt` and
    /// `.tfm` are ITK affines; `.nii` and `.nii.gz` displacement fields (ITK's LPS-mm form or
    /// MorphoSeg's voxel form, told apart by the intent name).
    public static func load(_ argument: String, invert: Bool = false) throws -> PointTransform {
        var path = argument.trimmingCharacters(in: .whitespaces)
        var inverse = invert
        if path.hasPrefix("[") {
            guard path.hasSuffix("]") else { throw MorphoTrainError.badTransformSpecification(argument) }
            let parts = path.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, parts[1] == "0" || parts[1] == "1" else {
                throw MorphoTrainError.badTransformSpecification(argument)
            }
            path = parts[0]
            if parts[1] == "1" { inverse.toggle() }
        }
        let lower = path.lowercased()
        if lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz") {
            if inverse { throw MorphoTrainError.fieldInversion(path: path) }
            return .field(try ITKDisplacementField.read(path))
        }
        let affine = try ITKTransformFile.read(path)
        return .affine(inverse ? affine.inverse : affine)
    }
}
