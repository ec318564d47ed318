import Foundation
import MorphoIO

/// A rigid or affine map of fixed-image world points to moving-image world points, in NIfTI
/// world coordinates (RAS, millimetres), so anisotropic and oblique voxels are handled by the
/// images' own affines:
///
///     y = A·(x − c) + c + t
///
/// `c` is the centre the matrix acts about (the fixed image's centre of mass after
/// initialisation: rotations about it barely move the anatomy, so rotation and translation
/// parameters decouple), `t` the translation (mm). The direction is ITK's: `x` is a fixed
/// (reference) point, `y` the moving point sampled for it.
///
/// Parameters (what the optimiser moves):
/// - rigid 3D (6): `[α, β, γ, t_x, t_y, t_z]`, `A = R_z(γ)·R_y(β)·R_x(α)` (radians);
/// - rigid 2D (3): `[θ, t_x, t_y]`, a rotation in the x–y plane;
/// - affine 3D (12): the 9 entries of `A` row by row, then `t`;
/// - affine 2D (6): `[a_xx, a_xy, a_yx, a_yy, t_x, t_y]`.
/// In 2D, world z passes through unchanged.
public struct LinearTransform: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case rigid, affine
    }

    public var kind: Kind
    /// 2 or 3.
    public var dimension: Int
    /// `c`, world RAS mm.
    public var center: SIMD3<Double>
    public var parameters: [Double]

    /// The identity of `kind` about `center`.
    public init(kind: Kind, dimension: Int, center: SIMD3<Double> = .zero) {
        precondition(dimension == 2 || dimension == 3, "linear transforms are 2D or 3D, not \(dimension)D")
        self.kind = kind
        self.dimension = dimension
        self.center = center
        switch (kind, dimension) {
        case (.rigid, 3): parameters = [0, 0, 0, 0, 0, 0]
        case (.rigid, _): parameters = [0, 0, 0]
        case (.affine, 3): parameters = Matrix3.identity.entries + [0, 0, 0]
        default: parameters = [1, 0, 0, 1, 0, 0]
        }
    }

    public var parameterCount: Int { parameters.count }

    /// Rotation angles (radians) of a rigid transform: 3 in 3D (x, y, z), 1 in 2D.
    var angleCount: Int { kind == .rigid ? (dimension == 3 ? 3 : 1) : 0 }

    /// `A` (2D: the x–y block, z row and column of the identity); `matrixEntries` row by row.
    var matrix: Matrix3 {
        switch (kind, dimension) {
        case (.rigid, 3): return Self.rotation(parameters[0], parameters[1], parameters[2])
        case (.rigid, _): return Self.rotation(0, 0, parameters[0])
        case (.affine, 3): return Matrix3(entries: Array(parameters[0..<9]))
        default: return Matrix3(entries: [parameters[0], parameters[1], 0, parameters[2], parameters[3], 0, 0, 0, 1])
        }
    }

    /// The 9 entries of `A`, row by row.
    public var matrixEntries: [Double] { matrix.entries }

    /// `t`, mm (2D: z = 0).
    public var translation: SIMD3<Double> {
        let n = parameters.count
        return dimension == 3 ? SIMD3(parameters[n - 3], parameters[n - 2], parameters[n - 1]) : SIMD3(parameters[n - 2], parameters[n - 1], 0)
    }

    /// `y` for the fixed point `x` (RAS mm).
    public func apply(_ x: SIMD3<Double>) -> SIMD3<Double> { matrix * (x - center) + center + translation }

    /// The map as a 4×4 on RAS points: `[A, c + t − A·c; 0 0 0 1]`.
    public var worldMap: Affine {
        let a = matrix.entries, o = center + translation - matrix * center
        return Affine(matrix: [[a[0], a[1], a[2], o.x], [a[3], a[4], a[5], o.y], [a[6], a[7], a[8], o.z], [0, 0, 0, 1]])
    }

    /// The same map as an ITK transform (LPS, fixed → moving, centre `c` in LPS): what ANTs writes
    /// as `0GenericAffine.mat` and `morphoseg apply -t` reads.
    public var itk: ITKAffineTransform {
        ITKAffineTransform(ras: worldMap, dimension: dimension, center: [-center.x, -center.y, center.z].prefix(dimension).map { $0 })
    }

    /// The same map with affine parameters (the affine stage starts where the rigid one ended).
    public func asAffine() -> LinearTransform {
        var out = LinearTransform(kind: .affine, dimension: dimension, center: center)
        let a = matrix.entries, t = translation
        out.parameters = dimension == 3 ? a + [t.x, t.y, t.z] : [a[0], a[1], a[3], a[4], t.x, t.y]
        return out
    }

    /// For every parameter k, `(∂A/∂p_k, ∂t/∂p_k)`: the point derivative is
    /// `∂y/∂p_k = ∂A/∂p_k·(x − c) + ∂t/∂p_k`.
    func parameterDerivatives() -> [(matrix: Matrix3, translation: SIMD3<Double>)] {
        let zero = Matrix3(r0: .zero, r1: .zero, r2: .zero)
        var out: [(matrix: Matrix3, translation: SIMD3<Double>)] = []
        switch (kind, dimension) {
        case (.rigid, 3):
            let (a, b, g) = (parameters[0], parameters[1], parameters[2])
            let rx = Self.rotationX(a), ry = Self.rotationY(b), rz = Self.rotationZ(g)
            out.append((rz * ry * Self.rotationXDerivative(a), .zero))
            out.append((rz * Self.rotationYDerivative(b) * rx, .zero))
            out.append((Self.rotationZDerivative(g) * ry * rx, .zero))
        case (.rigid, _):
            out.append((Self.rotationZDerivative(parameters[0]), .zero))
        case (.affine, 3):
            for k in 0..<9 { out.append((Self.unit(k), .zero)) }
        default:
            for k in [0, 1, 3, 4] { out.append((Self.unit(k), .zero)) }
        }
        for axis in 0..<dimension {
            var t = SIMD3<Double>.zero
            t[axis] = 1
            out.append((zero, t))
        }
        return out
    }

    /// `R_z(γ)·R_y(β)·R_x(α)`.
    static func rotation(_ a: Double, _ b: Double, _ g: Double) -> Matrix3 { rotationZ(g) * rotationY(b) * rotationX(a) }
    static func rotationX(_ a: Double) -> Matrix3 { Matrix3(entries: [1, 0, 0, 0, cos(a), -sin(a), 0, sin(a), cos(a)]) }
    static func rotationY(_ b: Double) -> Matrix3 { Matrix3(entries: [cos(b), 0, sin(b), 0, 1, 0, -sin(b), 0, cos(b)]) }
    static func rotationZ(_ g: Double) -> Matrix3 { Matrix3(entries: [cos(g), -sin(g), 0, sin(g), cos(g), 0, 0, 0, 1]) }
    static func rotationXDerivative(_ a: Double) -> Matrix3 { Matrix3(entries: [0, 0, 0, 0, -sin(a), -cos(a), 0, cos(a), -sin(a)]) }
    static func rotationYDerivative(_ b: Double) -> Matrix3 { Matrix3(entries: [-sin(b), 0, cos(b), 0, 0, 0, -cos(b), 0, -sin(b)]) }
    static func rotationZDerivative(_ g: Double) -> Matrix3 { Matrix3(entries: [-sin(g), -cos(g), 0, cos(g), -sin(g), 0, 0, 0, 0]) }
    /// The matrix with a 1 at row-major position k.
    static func unit(_ k: Int) -> Matrix3 { var e = [Double](repeating: 0, count: 9); e[k] = 1; return Matrix3(entries: e) }

    /// The rigid transform (about `center`) whose rotation is closest to `rotation` (a proper
    /// rotation matrix, row-major) with translation `t`.
    static func rigid(rotation: Matrix3, translation t: SIMD3<Double>, dimension: Int, center: SIMD3<Double>) -> LinearTransform {
        var out = LinearTransform(kind: .rigid, dimension: dimension, center: center)
        if dimension == 3 {
            let e = AffineDecomposition.eulerAngles(rotation)
            out.parameters = [e.x, e.y, e.z, t.x, t.y, t.z]
        } else {
            out.parameters = [atan2(rotation.r1.x, rotation.r0.x), t.x, t.y]
        }
        return out
    }
}
