/// Eigen-decomposition of a symmetric 3×3 matrix by cyclic Jacobi rotations: `S = V·diag(λ)·Vᵀ`
/// with `V` orthonormal (its columns the eigenvectors). Used for principal axes (moments
/// initialisation) and the polar decomposition of an affine matrix. Exact to rounding for
/// any symmetric input (Jacobi converges quadratically; 50 sweeps is far more than needed).
struct SymmetricEigen {
    /// Eigenvalues, descending.
    var values: SIMD3<Double>
    /// Column k is the unit eigenvector of `values[k]`.
    var vectors: Matrix3

    /// - Parameter matrix: symmetric (only the upper triangle is read).
    init(_ matrix: Matrix3) {
        let s = matrix.entries
        var a = [s[0], s[1], s[2], s[1], s[4], s[5], s[2], s[5], s[8]]
        var v: [Double] = [1, 0, 0, 0, 1, 0, 0, 0, 1]
        for _ in 0..<50 {
            let off = a[1] * a[1] + a[2] * a[2] + a[5] * a[5]
            if off < 1e-30 * max(1e-300, a[0] * a[0] + a[4] * a[4] + a[8] * a[8]) { break }
            for (p, q) in [(0, 1), (0, 2), (1, 2)] where a[p * 3 + q] != 0 {
                // The rotation in the (p, q) plane that zeroes a[p][q].
                let theta = (a[q * 3 + q] - a[p * 3 + p]) / (2 * a[p * 3 + q])
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), sn = t * c
                for k in 0..<3 {   // a ← a·J
                    let akp = a[k * 3 + p], akq = a[k * 3 + q]
                    a[k * 3 + p] = c * akp - sn * akq
                    a[k * 3 + q] = sn * akp + c * akq
                }
                for k in 0..<3 {   // a ← Jᵀ·a
                    let apk = a[p * 3 + k], aqk = a[q * 3 + k]
                    a[p * 3 + k] = c * apk - sn * aqk
                    a[q * 3 + k] = sn * apk + c * aqk
                }
                for k in 0..<3 {   // v ← v·J
                    let vkp = v[k * 3 + p], vkq = v[k * 3 + q]
                    v[k * 3 + p] = c * vkp - sn * vkq
                    v[k * 3 + q] = sn * vkp + c * vkq
                }
            }
        }
        let order = [0, 1, 2].sorted { a[$0 * 3 + $0] > a[$1 * 3 + $1] }
        values = SIMD3(a[order[0] * 4], a[order[1] * 4], a[order[2] * 4])
        var sorted = [Double](repeating: 0, count: 9)
        for (k, j) in order.enumerated() { for r in 0..<3 { sorted[r * 3 + k] = v[r * 3 + j] } }
        vectors = Matrix3(entries: sorted)
    }
}

/// What the linear stages need of `Matrix3` (declared with the phantom's blobs) beyond products.
extension Matrix3 {
    /// From 9 entries, row by row.
    init(entries e: [Double]) {
        self.init(r0: SIMD3(e[0], e[1], e[2]), r1: SIMD3(e[3], e[4], e[5]), r2: SIMD3(e[6], e[7], e[8]))
    }

    /// The 9 entries, row by row.
    var entries: [Double] { [r0.x, r0.y, r0.z, r1.x, r1.y, r1.z, r2.x, r2.y, r2.z] }

    var determinant: Double { (r0 * cross(r1, r2)).sum() }

    static func + (a: Matrix3, b: Matrix3) -> Matrix3 { Matrix3(r0: a.r0 + b.r0, r1: a.r1 + b.r1, r2: a.r2 + b.r2) }

    private func cross(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
    }
}
