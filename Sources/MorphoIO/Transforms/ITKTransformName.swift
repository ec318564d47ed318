/// The class name ITK stores with a transform's parameters, e.g. `AffineTransform_double_3_3`:
/// `<Class>_<scalar>_<input dimension>_<output dimension>`. MorphoSeg handles the two classes
/// whose parameters are "matrix row-major, then translation": `AffineTransform` and its base
/// `MatrixOffsetTransformBase`, in `double` or `float`, 2D or 3D.
public struct ITKTransformName: Equatable, Sendable, CustomStringConvertible {
    public enum Scalar: String, Sendable { case double, float }

    public var className: String
    public var scalar: Scalar
    public var dimension: Int

    public init(className: String = "AffineTransform", scalar: Scalar = .double, dimension: Int) {
        self.className = className
        self.scalar = scalar
        self.dimension = dimension
    }

    /// `nil` unless `name` is one of the affine names above (input and output dimension equal).
    public init?(parsing name: String) {
        let parts = name.split(separator: "_").map(String.init)
        guard parts.count == 4, ["AffineTransform", "MatrixOffsetTransformBase"].contains(parts[0]),
              let scalar = Scalar(rawValue: parts[1]), let d = Int(parts[2]), Int(parts[3]) == d, d == 2 || d == 3
        else { return nil }
        self.init(className: parts[0], scalar: scalar, dimension: d)
    }

    public var description: String { "\(className)_\(scalar.rawValue)_\(dimension)_\(dimension)" }

    /// Number of parameters: `dimension²` matrix entries plus `dimension` translations.
    public var parameterCount: Int { dimension * dimension + dimension }
}

extension ITKAffineTransform {
    /// ITK's parameter vector: `A` row-major, then `t`.
    public var parameters: [Double] { matrix + translation }

    /// From ITK's parameters (`A` row-major, then `t`) and fixed parameters (the centre).
    /// `nil` when the counts do not fit `dimension`.
    public init?(dimension: Int, parameters: [Double], fixedParameters: [Double]) {
        let n = dimension * dimension
        guard parameters.count == n + dimension, fixedParameters.count == dimension else { return nil }
        self.init(
            dimension: dimension, matrix: Array(parameters[0..<n]), translation: Array(parameters[n...]),
            center: fixedParameters)
    }

    /// Builds the transforms of a file's (name, parameters, fixed parameters) records, composed
    /// as ITK composes a transform list: the record listed first is applied last to the point
    /// (`T₀(T₁(…(x)))`). Names `CompositeTransform_*` (a header record without parameters) are
    /// skipped.
    static func fromRecords(
        _ records: [(name: String, parameters: [Double], fixed: [Double])], path: String
    ) throws -> ITKAffineTransform {
        var transforms: [ITKAffineTransform] = []
        for record in records {
            if record.name.hasPrefix("CompositeTransform_") { continue }
            guard let name = ITKTransformName(parsing: record.name) else {
                throw MorphoIOError.unsupportedTransform(path: path, name: record.name)
            }
            guard let transform = ITKAffineTransform(
                dimension: name.dimension, parameters: record.parameters, fixedParameters: record.fixed)
            else {
                throw MorphoIOError.badTransformFile(
                    path: path,
                    reason: "\(record.name) needs \(name.parameterCount) parameters and \(name.dimension) fixed parameters, "
                        + "found \(record.parameters.count) and \(record.fixed.count)")
            }
            transforms.append(transform)
        }
        guard var result = transforms.last else {
            throw MorphoIOError.badTransformFile(path: path, reason: "no transform in the file")
        }
        for outer in transforms.dropLast().reversed() {
            guard outer.dimension == result.dimension else {
                throw MorphoIOError.badTransformFile(path: path, reason: "2D and 3D transforms mixed in one file")
            }
            result = outer.after(result)
        }
        return result
    }
}
