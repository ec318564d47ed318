import Foundation
import MorphoIO
import MorphoKernels
import MorphoTensor

/// One resolution level of an image for the linear stages: the image Gaussian-smoothed and
/// shrunk, with the voxel → world affine of the shrunk grid, and linear interpolation of its
/// value and world-space gradient at any world point.
///
/// Shrinking by `f` along an axis of n voxels gives ⌈n/f⌉ voxels over the same box (`resize`,
/// `align_corners=False`): new voxel j sits at old voxel (j + 0.5)·r − 0.5, r = n/⌈n/f⌉, which
/// the affine records, so world positions stay exact. A 2D image (depth 1) is not shrunk in z.
struct LinearPyramidLevel: @unchecked Sendable {
    /// `[depth · height · width]`, x fastest.
    var data: [Float]
    var depth: Int, height: Int, width: Int
    /// Voxel (i, j, k) → world RAS mm.
    var affine: Affine
    /// World → voxel, row-major 3×4.
    var worldToVoxel: [Double]

    /// `image` `[1, 1, D, H, W]` on `affine`, smoothed by a Gaussian of `sigma` voxels (0: none)
    /// and shrunk by `shrink`.
    init(image: Tensor, affine: Affine, shrink: Int, sigma: Double) {
        let spatial = image.spatialShape.count == 3 ? image.spatialShape : [1] + image.spatialShape
        let is2D = spatial[0] == 1
        var smoothed = image.spatialShape.count == 3 ? image : image.reshaped([1, 1] + spatial)
        withoutGradients {
            if sigma > 0 {
                smoothed = is2D
                    ? smoothed.reshaped([1, 1, spatial[1], spatial[2]]).gaussianSmoothed(sigma: sigma).reshaped([1, 1] + spatial)
                    : smoothed.gaussianSmoothed(sigma: sigma)
            }
        }
        let size = spatial.enumerated().map { axis, n in is2D && axis == 0 ? 1 : max(1, (n + shrink - 1) / shrink) }
        let shrunk = withoutGradients { size == spatial ? smoothed : resize(smoothed, to: size, mode: .linear) }
        data = shrunk.scalars
        (depth, height, width) = (size[0], size[1], size[2])
        // Voxel j of the new grid at old voxel (j + 0.5)·r − 0.5 per axis (x, y, z).
        var scale = Affine.identity.matrix
        let ratios = [Double(spatial[2]) / Double(size[2]), Double(spatial[1]) / Double(size[1]), Double(spatial[0]) / Double(size[0])]
        for axis in 0..<3 {
            scale[axis][axis] = ratios[axis]
            scale[axis][3] = (ratios[axis] - 1) / 2
        }
        self.affine = affine * Affine(matrix: scale)
        let inverse = self.affine.inverse.matrix
        worldToVoxel = (0..<3).flatMap { r in (0..<4).map { inverse[r][$0] } }
    }

    var count: Int { depth * height * width }
    var is2D: Bool { depth == 1 }

    /// Mean voxel size, mm.
    var spacing: Double { let s = affine.voxelSizes; return is2D ? (s.x + s.y) / 2 : (s.x + s.y + s.z) / 3 }

    /// World position of voxel index `v` (x fastest).
    func worldPoint(_ v: Int) -> SIMD3<Double> {
        let i = v % width, j = (v / width) % height, k = v / (width * height)
        return affine.apply(SIMD3(Double(i), Double(j), Double(k)))
    }

    /// The image's value at world point `y` (linear interpolation) and its gradient with respect
    /// to `y` (world mm⁻¹, the exact derivative of the interpolant), or nil outside the grid
    /// (voxel centres span the image; a 2D image accepts |z| < 0.5 voxel).
    @inline(__always)
    func sample(_ p: UnsafePointer<Float>, at y: SIMD3<Double>) -> (value: Float, gradient: SIMD3<Double>)? {
        let w = worldToVoxel
        let u = w[0] * y.x + w[1] * y.y + w[2] * y.z + w[3]
        let v = w[4] * y.x + w[5] * y.y + w[6] * y.z + w[7]
        let s = w[8] * y.x + w[9] * y.y + w[10] * y.z + w[11]
        guard u >= 0, u <= Double(width - 1), v >= 0, v <= Double(height - 1) else { return nil }
        let x0 = min(Int(u), max(width - 2, 0)), y0 = min(Int(v), max(height - 2, 0))
        let fx = u - Double(x0), fy = v - Double(y0)
        let x1 = min(x0 + 1, width - 1), y1 = min(y0 + 1, height - 1)
        var z0 = 0, z1 = 0, fz = 0.0
        if is2D {
            guard abs(s) < 0.5 else { return nil }
        } else {
            guard s >= 0, s <= Double(depth - 1) else { return nil }
            z0 = min(Int(s), max(depth - 2, 0))
            z1 = min(z0 + 1, depth - 1)
            fz = s - Double(z0)
        }
        @inline(__always) func at(_ z: Int, _ yy: Int, _ x: Int) -> Double { Double(p[(z * height + yy) * width + x]) }
        let c000 = at(z0, y0, x0), c001 = at(z0, y0, x1), c010 = at(z0, y1, x0), c011 = at(z0, y1, x1)
        let c100 = at(z1, y0, x0), c101 = at(z1, y0, x1), c110 = at(z1, y1, x0), c111 = at(z1, y1, x1)
        let c00 = c000 + (c001 - c000) * fx, c01 = c010 + (c011 - c010) * fx
        let c10 = c100 + (c101 - c100) * fx, c11 = c110 + (c111 - c110) * fx
        let c0 = c00 + (c01 - c00) * fy, c1 = c10 + (c11 - c10) * fy
        let value = c0 + (c1 - c0) * fz
        // ∂/∂u, ∂/∂v, ∂/∂s of the trilinear interpolant.
        let du0 = (c001 - c000) + ((c011 - c010) - (c001 - c000)) * fy
        let du1 = (c101 - c100) + ((c111 - c110) - (c101 - c100)) * fy
        let du = du0 + (du1 - du0) * fz
        let dv = (c01 - c00) + ((c11 - c10) - (c01 - c00)) * fz
        let ds = c1 - c0
        // Chain rule through world → voxel: ∇_y = Wᵀ·∇_(u,v,s).
        let gradient = SIMD3(
            w[0] * du + w[4] * dv + w[8] * ds, w[1] * du + w[5] * dv + w[9] * ds, w[2] * du + w[6] * dv + w[10] * ds)
        return (Float(value), gradient)
    }
}
