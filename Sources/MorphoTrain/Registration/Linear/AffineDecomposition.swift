import Foundation

/// The rotation, scales, shear and translation of a linear transform, as the `register` summary
/// reports them, from the **polar decomposition** `A = R·S`: `S = √(AᵀA)` symmetric positive
/// definite (through its eigen-decomposition), `R = A·S⁻¹` a rotation (a reflection when
/// det A < 0, which the optimiser does not produce from a proper start). Angles are those of
/// `R = R_z(γ)·R_y(β)·R_x(α)`, the rigid parameterisation of `LinearTransform`. Everything is in
/// NIfTI world coordinates (RAS mm), the frame `morphoseg info` prints affines in.
public struct AffineDecomposition: Codable, Equatable, Sendable {
    /// `[α, β, γ]` about world x, y, z, degrees (2D: `[0, 0, θ]`).
    public var rotationDegrees: [Double]
    /// The diagonal of `S`: stretch along world x, y, z (1 = none).
    public var scales: [Double]
    /// The off-diagonal entries of `S`, `[xy, xz, yz]` (0 for a rotation followed by axis scales).
    public var shear: [Double]
    /// `t = y(c) − c`: how far the centre moves, mm.
    public var translation: [Double]
    /// `c`, mm.
    public var center: [Double]

    public init(_ transform: LinearTransform) {
        let a = transform.matrix
        let eigen = SymmetricEigen(a.transposed * a)
        let v = eigen.vectors.entries
        var s = [Double](repeating: 0, count: 9), sInverse = [Double](repeating: 0, count: 9)
        for r in 0..<3 {
            for c in 0..<3 {
                for k in 0..<3 {
                    let root = max(eigen.values[k], 0).squareRoot()
                    s[r * 3 + c] += v[r * 3 + k] * root * v[c * 3 + k]
                    sInverse[r * 3 + c] += v[r * 3 + k] / root * v[c * 3 + k]
                }
            }
        }
        let rotation = a * Matrix3(entries: sInverse)
        let e = Self.eulerAngles(rotation)
        rotationDegrees = [e.x, e.y, e.z].map { $0 * 180 / .pi }
        scales = [s[0], s[4], s[8]]
        shear = [s[1], s[2], s[5]]
        let t = transform.translation, c = transform.center
        translation = [t.x, t.y, t.z]
        center = [c.x, c.y, c.z]
    }

    /// `(α, β, γ)` with `r = R_z(γ)·R_y(β)·R_x(α)` (row-major), β in [−π/2, π/2].
    static func eulerAngles(_ rotation: Matrix3) -> SIMD3<Double> {
        let r = rotation.entries
        let beta = asin(max(-1, min(1, -r[6])))
        return SIMD3(atan2(r[7], r[8]), beta, atan2(r[3], r[0]))
    }

    /// One line for the terminal.
    public var summary: String {
        func list(_ x: [Double], _ digits: Int) -> String { x.map { String(format: "%.\(digits)f", $0) }.joined(separator: ", ") }
        return "rotation (°, about x, y, z): \(list(rotationDegrees, 2)); scales: \(list(scales, 4)); "
            + "shear: \(list(shear, 4)); translation (mm, RAS): \(list(translation, 2))"
    }
}
