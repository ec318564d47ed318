import Foundation

/// Where the linear stages start (ITK's `CenteredTransformInitializer`, ANTs'
/// `--initial-moving-transform [fixed, moving, 1]`):
/// - `com` (default): the centres of mass of the two images' intensities aligned, no rotation;
///   the transform's centre is the fixed image's centre of mass.
/// - `moments`: centres of mass aligned and the principal axes of the intensity distributions
///   (eigenvectors of the second central moments) rotated onto each other, the sign of each
///   axis chosen to make the rotation proper and closest to the identity. Helps for large
///   rotations of elongated content; it can mislead when the two fields of view crop the
///   anatomy differently.
/// - `none`: the identity, about the fixed centre of mass.
/// Masks restrict the moments to their region.
public enum LinearInitialization: String, CaseIterable, Codable, Sendable {
    case com, moments, none

    /// The rigid start for `fixed` and `moving` (intensities ≥ 0 weigh the moments; negative
    /// values count as 0).
    func initial(fixed: LinearPyramidLevel, moving: LinearPyramidLevel, fixedMask: LinearPyramidLevel?, movingMask: LinearPyramidLevel?)
        -> LinearTransform
    {
        let f = Moments(fixed, mask: fixedMask), m = Moments(moving, mask: movingMask)
        let dimension = fixed.is2D ? 2 : 3
        switch self {
        case .none:
            return LinearTransform(kind: .rigid, dimension: dimension, center: f.center)
        case .com:
            return LinearTransform.rigid(rotation: Matrix3.identity, translation: m.center - f.center, dimension: dimension, center: f.center)
        case .moments:
            let ef = SymmetricEigen(f.covariance).vectors, em = SymmetricEigen(m.covariance).vectors
            var best = Matrix3.identity, bestTrace = -Double.infinity
            // y − c_m = R·(x − c_f) with R = E_m·diag(s)·E_fᵀ; in 2D the z axis (eigenvalue 0) stays.
            for signs in [(1.0, 1.0, 1.0), (1, -1, -1), (-1, 1, -1), (-1, -1, 1), (1, 1, -1), (1, -1, 1), (-1, 1, 1), (-1, -1, -1)] {
                let s = Matrix3(entries: [signs.0, 0, 0, 0, signs.1, 0, 0, 0, signs.2])
                let r = em * s * ef.transposed
                guard r.determinant > 0 else { continue }
                if dimension == 2 && abs(r.r2.z - 1) > 1e-6 { continue }
                let trace = r.r0.x + r.r1.y + r.r2.z
                if trace > bestTrace { bestTrace = trace; best = r }
            }
            return LinearTransform.rigid(rotation: best, translation: m.center - f.center, dimension: dimension, center: f.center)
        }
    }

    /// Intensity-weighted centre (world mm) and second central moments (row-major 3×3, mm²).
    struct Moments {
        var center: SIMD3<Double>
        var covariance: Matrix3

        init(_ image: LinearPyramidLevel, mask: LinearPyramidLevel?) {
            var mass = 0.0, sum = SIMD3<Double>.zero
            var second = [Double](repeating: 0, count: 9)
            for v in 0..<image.count {
                var weight = Double(max(image.data[v], 0))
                if let mask { weight *= mask.data[v] >= 0.5 ? 1 : 0 }
                guard weight > 0 else { continue }
                let x = image.worldPoint(v)
                mass += weight
                sum += weight * x
                for r in 0..<3 { for c in 0..<3 { second[r * 3 + c] += weight * x[r] * x[c] } }
            }
            guard mass > 0 else {
                // An empty image: its geometric centre, no preferred axes.
                center = image.worldPoint(image.count / 2)
                covariance = .identity
                return
            }
            let c = sum / mass
            center = c
            covariance = Matrix3(entries: (0..<9).map { second[$0] / mass - c[$0 / 3] * c[$0 % 3] })
        }
    }
}
