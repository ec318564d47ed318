/// An ITK/ANTs affine transform (`AffineTransform_double_3_3`, `MatrixOffsetTransformBase_…`):
/// the linear transform ANTs writes as `0GenericAffine.mat` and ITK-SNAP and Slicer read.
///
/// **The model (ITK's `MatrixOffsetTransformBase`).** In `dimension` D (2 or 3), with the D×D
/// matrix `A`, the translation `t` and the centre `c` (ITK's fixed parameters), a point `x` maps to
///
///     y = A (x − c) + c + t = A x + offset,   offset = t + c − A c.
///
/// Points are physical millimetres in ITK's **LPS** frame (x grows to the patient's left, y to
/// posterior, z to superior), which is NIfTI's RAS world with x and y negated:
/// `x_LPS = diag(−1, −1, 1) · x_RAS` (2D: `diag(−1, −1)` on the in-plane x, y).
/// The direction is ITK's resampling direction: `x` is a point of the fixed (output, reference)
/// space and `y` the matching point of the moving (input) space, so a transform registering a
/// moving image onto a fixed one maps fixed → moving.
public struct ITKAffineTransform: Equatable, Sendable {
    /// 2 or 3.
    public var dimension: Int
    /// `A`, `dimension²` entries, row-major (`matrix[r * dimension + c]`).
    public var matrix: [Double]
    /// `t`, mm (LPS).
    public var translation: [Double]
    /// `c`, mm (LPS): the point the matrix acts about (ITK's fixed parameters).
    public var center: [Double]

    /// - Precondition: `dimension` is 2 or 3 and the arrays have `dimension²`, `dimension` and
    ///   `dimension` entries.
    public init(dimension: Int, matrix: [Double], translation: [Double], center: [Double]? = nil) {
        precondition(dimension == 2 || dimension == 3, "ITK affine transforms here are 2D or 3D, not \(dimension)D")
        precondition(matrix.count == dimension * dimension && translation.count == dimension,
                     "a \(dimension)D affine needs \(dimension * dimension) matrix entries and \(dimension) translations")
        let center = center ?? Array(repeating: 0, count: dimension)
        precondition(center.count == dimension, "a \(dimension)D affine needs a centre of \(dimension) values")
        self.dimension = dimension
        self.matrix = matrix
        self.translation = translation
        self.center = center
    }

    /// The identity in `dimension` D.
    public static func identity(dimension: Int) -> ITKAffineTransform {
        ITKAffineTransform(
            dimension: dimension, matrix: (0..<dimension * dimension).map { $0 % (dimension + 1) == 0 ? 1 : 0 },
            translation: Array(repeating: 0, count: dimension))
    }

    /// `offset = t + c − A c` (mm, LPS): the image of the origin.
    public var offset: [Double] {
        (0..<dimension).map { r in
            var acc = translation[r] + center[r]
            for k in 0..<dimension { acc -= matrix[r * dimension + k] * center[k] }
            return acc
        }
    }

    /// The 4×4 homogeneous matrix of the map on LPS points, `[A offset; 0 1]`; a 2D transform is
    /// embedded with z passed through unchanged.
    public var lpsMatrix: Affine {
        var m = Affine.identity.matrix
        let o = offset
        for r in 0..<dimension {
            for k in 0..<dimension { m[r][k] = matrix[r * dimension + k] }
            m[r][3] = o[r]
        }
        return Affine(matrix: m)
    }

    /// The same map on NIfTI world (RAS) points: `F · lpsMatrix · F` with `F = diag(−1, −1, 1, 1)`
    /// (F is its own inverse). `rasMatrix.apply(p)` is the moving point (RAS mm) of the fixed
    /// point `p` (RAS mm).
    public var rasMatrix: Affine { Self.flip * lpsMatrix * Self.flip }

    /// The transform whose map on LPS points is `lps` (4×4, last row `0 0 0 1`), stored with
    /// the given centre (default the origin). For `dimension == 2` only the in-plane block of
    /// `lps` is used.
    public init(lps: Affine, dimension: Int = 3, center: [Double]? = nil) {
        let center = center ?? Array(repeating: 0, count: dimension)
        var a = [Double](), t = [Double]()
        for r in 0..<dimension {
            for k in 0..<dimension { a.append(lps.matrix[r][k]) }
        }
        // t = offset − c + A c
        for r in 0..<dimension {
            var acc = lps.matrix[r][3] - center[r]
            for k in 0..<dimension { acc += a[r * dimension + k] * center[k] }
            t.append(acc)
        }
        self.init(dimension: dimension, matrix: a, translation: t, center: center)
    }

    /// The transform whose map on RAS points is `ras` (see `rasMatrix`); `center` in LPS mm.
    public init(ras: Affine, dimension: Int = 3, center: [Double]? = nil) {
        self.init(lps: Self.flip * ras * Self.flip, dimension: dimension, center: center)
    }

    /// Where the LPS point `point` (mm) goes; a 2D transform leaves z unchanged.
    public func apply(_ point: SIMD3<Double>) -> SIMD3<Double> {
        var out = point
        let o = offset
        for r in 0..<dimension {
            var acc = o[r]
            for k in 0..<dimension { acc += matrix[r * dimension + k] * point[k] }
            out[r] = acc
        }
        return out
    }

    /// The inverse map (moving → fixed), kept about the same centre. A singular matrix gives
    /// non-finite entries (see `Affine.inverse`).
    public var inverse: ITKAffineTransform {
        ITKAffineTransform(lps: lpsMatrix.inverse, dimension: dimension, center: center)
    }

    /// `outer ∘ inner`: `(outer.after(inner)).apply(x) == outer.apply(inner.apply(x))`, about
    /// `inner`'s centre. Both must have the same dimension.
    public func after(_ inner: ITKAffineTransform) -> ITKAffineTransform {
        precondition(dimension == inner.dimension, "cannot compose a \(dimension)D and a \(inner.dimension)D affine")
        return ITKAffineTransform(lps: lpsMatrix * inner.lpsMatrix, dimension: dimension, center: inner.center)
    }

    /// True when the maps agree within `tolerance` on every entry of `lpsMatrix` (mm for the
    /// offset), whatever the centres they are stored about.
    public func isApproximatelyEqual(to other: ITKAffineTransform, tolerance: Double = 1e-9) -> Bool {
        dimension == other.dimension && lpsMatrix.isApproximatelyEqual(to: other.lpsMatrix, tolerance: tolerance)
    }

    /// `diag(−1, −1, 1, 1)`: RAS ↔ LPS.
    public static let flip = Affine.diagonal([-1, -1, 1])
}
