import MorphoIO

/// The top three rows of a 4×4 affine as scalars, for loops that map millions of points
/// (no array reads, no bounds checks per point).
struct PointMatrix {
    let a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23: Double

    init(_ affine: Affine) {
        let m = affine.matrix
        (a00, a01, a02, a03) = (m[0][0], m[0][1], m[0][2], m[0][3])
        (a10, a11, a12, a13) = (m[1][0], m[1][1], m[1][2], m[1][3])
        (a20, a21, a22, a23) = (m[2][0], m[2][1], m[2][2], m[2][3])
    }

    @inline(__always)
    func apply(_ x: Double, _ y: Double, _ z: Double) -> (Double, Double, Double) {
        (a00 * x + a01 * y + a02 * z + a03, a10 * x + a11 * y + a12 * z + a13, a20 * x + a21 * y + a22 * z + a23)
    }
}
