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

    /// The file of one `-t` argument and whether `[FILE,1]` asks for its inverse.
    ///
    /// - Throws: `MorphoTrainError.badTransformSpecification` for a bracket that is not `[FILE,0|1]`.
    public static func argumentParts(_ argument: String) throws -> (path: String, inverse: Bool) {
        let text = argument.trimmingCharacters(in: .whitespaces)
        guard text.hasPrefix("[") else { return (text, false) }
        guard text.hasSuffix("]") else { throw MorphoTrainError.badTransformSpecification(argument) }
        let parts = text.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, !parts[0].isEmpty, parts[1] == "0" || parts[1] == "1" else {
            throw MorphoTrainError.badTransformSpecification(argument)
        }
        return (parts[0], parts[1] == "1")
    }

    /// Loads one `-t` argument: `FILE`, or `[FILE,1]` for the inverse of an affine (`[FILE,0]`
    /// is `FILE`), optionally inverted again by `invert` (`--invert N`). `.mat`, `.txt` and
    /// `.tfm` are ITK affines; `.nii` and `.nii.gz` displacement fields (ITK's LPS-mm form or
    /// MorphoSeg's voxel form, told apart by the intent name).
    public static func load(_ argument: String, invert: Bool = false) throws -> PointTransform {
        let (path, bracketInverse) = try argumentParts(argument)
        let inverse = invert != bracketInverse
        let lower = path.lowercased()
        if lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz") {
            if inverse { throw MorphoTrainError.fieldInversion(path: path) }
            return .field(try ITKDisplacementField.read(path))
        }
        let affine = try ITKTransformFile.read(path)
        return .affine(inverse ? affine.inverse : affine)
    }
}
