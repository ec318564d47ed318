import Foundation
import MorphoIO
import MorphoTensor

/// A known rigid-plus-scaling misalignment for hard registration test pairs: in world
/// coordinates (mm), about the centre `c` of the image grid,
///
///     A(x) = c + R · S · (x − c) + t,     R = R_z(γ) · R_y(β) · R_x(α),  S = diag(s_x, s_y, s_z),
///
/// where α, β, γ rotate about the world x, y, z axes (degrees, right-handed), `s` are scale
/// factors and `t` a shift in mm. A test pair samples the source image at `A(x)` (after a smooth
/// deformation, see `totalField(after:on:)`), so its content appears moved by `A⁻¹`. Working in
/// world coordinates keeps the angles and millimetres right on anisotropic grids.
///
/// In 2D (a grid of depth 1) only the in-plane part applies: rotation about z, scaling and shift
/// along x and y (draw with `random(…, dims: 2)`).
public struct SyntheticMisalignment: Sendable, Equatable {
    /// Rotation about world x, y, z, degrees.
    public var rotationDegrees: SIMD3<Double>
    /// Scale factors along world x, y, z (1 = none).
    public var scale: SIMD3<Double>
    /// Translation along world x, y, z, mm.
    public var shift: SIMD3<Double>

    public init(rotationDegrees: SIMD3<Double> = .zero, scale: SIMD3<Double> = .one, shift: SIMD3<Double> = .zero) {
        self.rotationDegrees = rotationDegrees
        self.scale = scale
        self.shift = shift
    }

    /// Rotation angles uniform in ±`maxRotationDegrees`, scale factors uniform in 1 ± `maxScale`,
    /// shifts uniform in ±`maxShift` mm, independently per axis (`dims` 2: only the in-plane axes).
    public static func random(
        maxRotationDegrees: Double, maxScale: Double, maxShift: Double, dims: Int = 3, using rng: inout RandomGenerator
    ) -> SyntheticMisalignment {
        func draw(_ bound: Double) -> Double { bound * (2 * rng.uniformDouble() - 1) }
        var m = SyntheticMisalignment()
        for axis in 0..<3 { m.rotationDegrees[axis] = dims == 3 || axis == 2 ? draw(maxRotationDegrees) : 0 }
        for axis in 0..<3 { m.scale[axis] = dims == 3 || axis < 2 ? 1 + draw(maxScale) : 1 }
        for axis in 0..<3 { m.shift[axis] = dims == 3 || axis < 2 ? draw(maxShift) : 0 }
        return m
    }

    /// `random(…, using:)` from a stream of `seed` of its own, so the smooth field drawn from the
    /// same seed (`SyntheticPair.deforming`) is the same with or without a misalignment.
    public static func random(
        maxRotationDegrees: Double, maxScale: Double, maxShift: Double, dims: Int = 3, seed: UInt64
    ) -> SyntheticMisalignment {
        var rng = RandomGenerator(seed: seed ^ 0x5EED_A11C_0000_0027)
        return random(maxRotationDegrees: maxRotationDegrees, maxScale: maxScale, maxShift: maxShift, dims: dims, using: &rng)
    }

    /// `R · S` (3×3, row-major).
    public var linearPart: [[Double]] {
        let (a, b, g) = (rotationDegrees.x * .pi / 180, rotationDegrees.y * .pi / 180, rotationDegrees.z * .pi / 180)
        let rx: [[Double]] = [[1, 0, 0], [0, cos(a), -sin(a)], [0, sin(a), cos(a)]]
        let ry: [[Double]] = [[cos(b), 0, sin(b)], [0, 1, 0], [-sin(b), 0, cos(b)]]
        let rz: [[Double]] = [[cos(g), -sin(g), 0], [sin(g), cos(g), 0], [0, 0, 1]]
        func product(_ p: [[Double]], _ q: [[Double]]) -> [[Double]] {
            (0..<3).map { r in (0..<3).map { c in (0..<3).reduce(0) { $0 + p[r][$1] * q[$1][c] } } }
        }
        let r = product(rz, product(ry, rx))
        return (0..<3).map { row in (0..<3).map { col in r[row][col] * scale[col] } }
    }

    /// `A` as a world-to-world 4×4 transform about `centre` (mm).
    public func worldTransform(centre: SIMD3<Double>) -> Affine {
        let l = linearPart
        var m = Affine.identity.matrix
        for row in 0..<3 {
            for col in 0..<3 { m[row][col] = l[row][col] }
            m[row][3] = centre[row] + shift[row] - (0..<3).reduce(0) { $0 + l[row][$1] * centre[$1] }
        }
        return Affine(matrix: m)
    }

    /// The centre of `grid` in world coordinates (mm): the world position of its middle voxel index.
    public static func centre(of grid: Volume) -> SIMD3<Double> {
        grid.affine.apply(SIMD3(Double(grid.width - 1) / 2, Double(grid.height - 1) / 2, Double(grid.depth - 1) / 2))
    }

    /// The total displacement `[1, nd, spatial…]` (voxels of `grid`, channel `i` along tensor
    /// axis `i`) of `p ↦ W⁻¹ A W (p + u(p))`, where `W` is `grid`'s voxel-to-world affine and `u`
    /// is `flow` (same layout): the smooth deformation first, then the misalignment. Sampling an
    /// image of `grid` with `warp(image, total)` gives `image(W⁻¹ A W (p + u(p)))`.
    public func totalField(after flow: Tensor, on grid: Volume) -> Tensor {
        let nd = flow.rank - 2
        precondition(flow.shape[0] == 1 && flow.shape[1] == nd, "one field [1, nd, spatial…], got \(flow.shape)")
        precondition(flow.count == nd * grid.spatialCount && (nd == 3) == !grid.is2D, "flow \(flow.shape) is not on the grid \(grid.spatialShape)")
        let toVoxels = grid.affine.inverse * worldTransform(centre: Self.centre(of: grid)) * grid.affine
        let (d, h, w) = (grid.depth, grid.height, grid.width)
        let count = grid.spatialCount
        var out = [Float](repeating: 0, count: nd * count)
        flow.withUnsafeBufferPointer { u in
            for z in 0..<d { for y in 0..<h { for x in 0..<w {
                let v = (z * h + y) * w + x
                // Tensor channels run (z, y, x) in 3D and (y, x) in 2D; NIfTI voxel indices (i, j, k) = (x, y, z).
                let ux = Double(u[(nd - 1) * count + v]), uy = Double(u[(nd - 2) * count + v])
                let uz = nd == 3 ? Double(u[v]) : 0
                let q = toVoxels.apply(SIMD3(Double(x) + ux, Double(y) + uy, Double(z) + uz))
                out[(nd - 1) * count + v] = Float(q.x - Double(x))
                out[(nd - 2) * count + v] = Float(q.y - Double(y))
                if nd == 3 { out[v] = Float(q.z - Double(z)) }
            } } }
        }
        return Tensor(shape: flow.shape, data: out)
    }

    /// One line: angles, scale factors and shift.
    public var description: String {
        func f(_ v: SIMD3<Double>, _ digits: Int) -> String {
            "(" + [v.x, v.y, v.z].map { String(format: "%.\(digits)f", $0) }.joined(separator: ", ") + ")"
        }
        return "rotation \(f(rotationDegrees, 2))°, scale \(f(scale, 4)), shift \(f(shift, 2)) mm"
    }
}
