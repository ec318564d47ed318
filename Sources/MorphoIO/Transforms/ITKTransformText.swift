import Foundation

/// ITK's text transform format (`.txt`, `.tfm`), read and written for affine transforms.
///
/// **The format** (as ITK's `TxtTransformIO` reads it): lines of text; surrounding blanks are
/// trimmed, empty lines and lines starting with `#` are ignored (ITK writes
/// `#Insight Transform File V1.0` first and `#Transform <n>` before each transform, both
/// comments). Every other line is `<Key>: <values>`:
///
///     #Insight Transform File V1.0
///     #Transform 0
///     Transform: AffineTransform_double_3_3
///     Parameters: a11 a12 a13 a21 a22 a23 a31 a32 a33 t1 t2 t3
///     FixedParameters: c1 c2 c3
///
/// - `Transform:` starts a transform and names its class (`ITKTransformName`).
/// - `Parameters:` whitespace-separated numbers: for the matrix-offset classes, the D×D matrix
///   row by row, then the D translations (D = 2 for `_2_2`: 4 + 2 numbers).
/// - `FixedParameters:` the centre of rotation, D numbers.
/// Parameters and fixed parameters may come in either order after `Transform:`. Several
/// transforms in one file form an ITK composite (see `ITKAffineTransform.fromRecords`);
/// `CompositeTransform_…` names the composite itself and has no parameters. All values are in
/// LPS millimetres (see `ITKAffineTransform`).
public enum ITKTransformText {
    /// Parses the text of a transform file; `path` only names it in errors.
    public static func parse(_ text: String, path: String = "<text>") throws -> ITKAffineTransform {
        var records: [(name: String, parameters: [Double], fixed: [Double])] = []
        var current: (name: String, parameters: [Double]?, fixed: [Double]?)?
        func finish() throws {
            guard let record = current else { return }
            if record.name.hasPrefix("CompositeTransform_") {
                records.append((record.name, [], []))
            } else {
                guard let p = record.parameters, let f = record.fixed else {
                    throw MorphoIOError.badTransformFile(
                        path: path, reason: "\(record.name) lacks its \(record.parameters == nil ? "Parameters" : "FixedParameters") line")
                }
                records.append((record.name, p, f))
            }
            current = nil
        }
        for (number, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw MorphoIOError.badTransformFile(path: path, reason: "line \(number + 1) has no 'Key:'")
            }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "Transform":
                try finish()
                current = (value, nil, nil)
            case "Parameters", "FixedParameters":
                guard current != nil else {
                    throw MorphoIOError.badTransformFile(path: path, reason: "line \(number + 1): \(key) before any Transform:")
                }
                var numbers: [Double] = []
                for token in value.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                    guard let v = Double(token) else {
                        throw MorphoIOError.badTransformFile(path: path, reason: "line \(number + 1): '\(token)' is not a number")
                    }
                    numbers.append(v)
                }
                if key == "Parameters" { current?.parameters = numbers } else { current?.fixed = numbers }
            default:
                continue  // ITK ignores other keys too (ComponentTransformFile is for .h5 composites).
            }
        }
        try finish()
        return try ITKAffineTransform.fromRecords(records, path: path)
    }

    /// The file's text: header comment, one transform, numbers in the shortest form that reads
    /// back to the same `Double` (`Float` for `.float`).
    public static func text(of transform: ITKAffineTransform, scalar: ITKTransformName.Scalar = .double) -> String {
        let name = ITKTransformName(scalar: scalar, dimension: transform.dimension)
        func numbers(_ values: [Double]) -> String {
            values.map { scalar == .double ? "\($0)" : "\(Float($0))" }.joined(separator: " ")
        }
        return """
            #Insight Transform File V1.0
            #Transform 0
            Transform: \(name)
            Parameters: \(numbers(transform.parameters))
            FixedParameters: \(numbers(transform.center))

            """
    }
}
