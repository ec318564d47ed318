/// A voxel-to-world transform: voxel indices `(i, j, k)` along NIfTI axes `(x, y, z)` map to world
/// coordinates `(x, y, z)` in millimetres, as a 4×4 row-major matrix whose last row is `0 0 0 1`.
///
/// This is the matrix NIfTI calls the sform (`srow_x/y/z`) or the qform (from the quaternion,
/// `pixdim` and `qfac`). Voxel `(0, 0, 0)` is the centre of the first stored voxel.
public struct Affine: Equatable, Sendable {
    /// 4×4, row-major: `matrix[row][column]`.
    public var matrix: [[Double]]

    /// - Precondition: `matrix` is 4×4.
    public init(matrix: [[Double]]) {
        precondition(matrix.count == 4 && matrix.allSatisfy { $0.count == 4 }, "Affine needs a 4x4 matrix")
        self.matrix = matrix
    }

    /// The identity transform (1 mm isotropic voxels, origin at voxel 0).
    public static let identity = Affine.diagonal([1, 1, 1])

    /// Scaling by `spacing` (mm per voxel along x, y, z; missing entries are 1), no rotation, no
    /// translation. This is the NIfTI fallback when neither sform nor qform is set.
    public static func diagonal(_ spacing: [Double]) -> Affine {
        var m = Affine.zeroMatrix
        for axis in 0..<3 { m[axis][axis] = axis < spacing.count ? spacing[axis] : 1 }
        m[3][3] = 1
        return Affine(matrix: m)
    }

    /// World position (mm) of the voxel index `voxel` (fractional indices allowed).
    public func apply(_ voxel: SIMD3<Double>) -> SIMD3<Double> {
        let m = matrix
        return SIMD3(
            m[0][0] * voxel.x + m[0][1] * voxel.y + m[0][2] * voxel.z + m[0][3],
            m[1][0] * voxel.x + m[1][1] * voxel.y + m[1][2] * voxel.z + m[1][3],
            m[2][0] * voxel.x + m[2][1] * voxel.y + m[2][2] * voxel.z + m[2][3])
    }

    /// The world-to-voxel transform. A singular matrix (a zero spacing, collapsed axes) has no
    /// inverse; the result then contains non-finite entries rather than trapping.
    public var inverse: Affine {
        // Inverse of [R t; 0 1] is [R⁻¹  −R⁻¹t; 0 1], with R⁻¹ from the adjugate.
        let m = matrix
        let a = m[0][0], b = m[0][1], c = m[0][2]
        let d = m[1][0], e = m[1][1], f = m[1][2]
        let g = m[2][0], h = m[2][1], k = m[2][2]
        let det = a * (e * k - f * h) - b * (d * k - f * g) + c * (d * h - e * g)
        let s = 1 / det
        let r: [[Double]] = [
            [(e * k - f * h) * s, (c * h - b * k) * s, (b * f - c * e) * s],
            [(f * g - d * k) * s, (a * k - c * g) * s, (c * d - a * f) * s],
            [(d * h - e * g) * s, (b * g - a * h) * s, (a * e - b * d) * s],
        ]
        var out = Affine.zeroMatrix
        for row in 0..<3 {
            for col in 0..<3 { out[row][col] = r[row][col] }
            out[row][3] = -(r[row][0] * m[0][3] + r[row][1] * m[1][3] + r[row][2] * m[2][3])
        }
        out[3][3] = 1
        return Affine(matrix: out)
    }

    /// Composition: `(self * other).apply(v) == self.apply(other.apply(v))`.
    public static func * (lhs: Affine, rhs: Affine) -> Affine {
        var out = Affine.zeroMatrix
        for row in 0..<4 {
            for col in 0..<4 {
                var acc = 0.0
                for n in 0..<4 { acc += lhs.matrix[row][n] * rhs.matrix[n][col] }
                out[row][col] = acc
            }
        }
        return Affine(matrix: out)
    }

    /// Length of each voxel axis in world space (mm): the column norms of the 3×3 part. Equals
    /// `pixdim[1...3]` for any qform and for an sform without shear.
    public var voxelSizes: SIMD3<Double> {
        var out = SIMD3<Double>()
        for col in 0..<3 {
            let x = matrix[0][col], y = matrix[1][col], z = matrix[2][col]
            out[col] = (x * x + y * y + z * z).squareRoot()
        }
        return out
    }

    /// True when every entry differs by at most `tolerance` (absolute).
    public func isApproximatelyEqual(to other: Affine, tolerance: Double = 1e-4) -> Bool {
        for row in 0..<4 {
            for col in 0..<4 where !(abs(matrix[row][col] - other.matrix[row][col]) <= tolerance) {
                return false
            }
        }
        return true
    }

    static var zeroMatrix: [[Double]] { Array(repeating: Array(repeating: 0, count: 4), count: 4) }
}
