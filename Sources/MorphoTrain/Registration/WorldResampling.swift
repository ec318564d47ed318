import MorphoIO
import MorphoKernels
import MorphoTensor

/// Resampling of one volume onto another's grid through both affines (world coordinates, mm):
/// output voxel `p` of `grid` takes the value of `volume` at voxel `A_volume⁻¹ · A_grid · p`.
/// This is how a moving image acquired with another field of view, resolution or orientation is
/// brought onto the fixed image's grid before a registration network sees the pair.
public enum WorldResampling {
    /// `volume` (all its channels) resampled onto `grid`'s spatial grid and geometry: `.linear`
    /// (trilinear) for intensities, `.nearest` for label maps (values are never mixed).
    ///
    /// A sample position within half a voxel of the source's outermost voxel centres counts as
    /// inside (the voxel's own extent) and is clamped onto the nearest centre for interpolation;
    /// positions further out get `fill`.
    ///
    /// - Returns: the resampled volume (spacing, affine and header geometry of `grid`, channels of
    ///   `volume`) and how many output voxels fell inside `volume` (0 means no overlap at all).
    public static func resample(
        _ volume: Volume, onto grid: Volume, interpolation: SamplingMode, fill: Float = 0
    ) -> (volume: Volume, inside: Int) {
        let map = volume.affine.inverse * grid.affine
        let m = map.matrix
        let (nx, ny, nz) = (volume.width, volume.height, volume.depth)
        let (gx, gy, gz) = (grid.width, grid.height, grid.depth)
        let channels = volume.channels
        let sourceCount = volume.spatialCount
        let count = grid.spatialCount
        var out = [Float](repeating: fill, count: channels * count)
        var insidePerSlice = [Int](repeating: 0, count: gz)
        volume.data.withUnsafeBufferPointer { srcBuffer in
            out.withUnsafeMutableBufferPointer { dstBuffer in
                insidePerSlice.withUnsafeMutableBufferPointer { insideBuffer in
                    let src = srcBuffer.baseAddress!, dst = dstBuffer.baseAddress!
                    let inside = insideBuffer.baseAddress!
                    Parallel.forEach(gz) { k in
                        var hits = 0
                        for j in 0..<gy {
                            // Position of voxel (0, j, k) and the step per x.
                            let bx = m[0][1] * Double(j) + m[0][2] * Double(k) + m[0][3]
                            let by = m[1][1] * Double(j) + m[1][2] * Double(k) + m[1][3]
                            let bz = m[2][1] * Double(j) + m[2][2] * Double(k) + m[2][3]
                            for i in 0..<gx {
                                let x = bx + m[0][0] * Double(i)
                                let y = by + m[1][0] * Double(i)
                                let z = bz + m[2][0] * Double(i)
                                guard x >= -0.5, x <= Double(nx) - 0.5, y >= -0.5, y <= Double(ny) - 0.5,
                                      z >= -0.5, z <= Double(nz) - 0.5 else { continue }
                                hits += 1
                                let o = (k * gy + j) * gx + i
                                let cx = min(max(x, 0), Double(nx - 1))
                                let cy = min(max(y, 0), Double(ny - 1))
                                let cz = min(max(z, 0), Double(nz - 1))
                                switch interpolation {
                                case .nearest:
                                    let s = (Int(cz.rounded()) * ny + Int(cy.rounded())) * nx + Int(cx.rounded())
                                    for c in 0..<channels { dst[c * count + o] = src[c * sourceCount + s] }
                                case .linear:
                                    let x0 = min(Int(cx), nx - 1), y0 = min(Int(cy), ny - 1), z0 = min(Int(cz), nz - 1)
                                    let x1 = min(x0 + 1, nx - 1), y1 = min(y0 + 1, ny - 1), z1 = min(z0 + 1, nz - 1)
                                    let fx = cx - Double(x0), fy = cy - Double(y0), fz = cz - Double(z0)
                                    for c in 0..<channels {
                                        let p = src + c * sourceCount
                                        func at(_ zz: Int, _ yy: Int, _ xx: Int) -> Double { Double(p[(zz * ny + yy) * nx + xx]) }
                                        let c00 = at(z0, y0, x0) * (1 - fx) + at(z0, y0, x1) * fx
                                        let c01 = at(z0, y1, x0) * (1 - fx) + at(z0, y1, x1) * fx
                                        let c10 = at(z1, y0, x0) * (1 - fx) + at(z1, y0, x1) * fx
                                        let c11 = at(z1, y1, x0) * (1 - fx) + at(z1, y1, x1) * fx
                                        let c0 = c00 * (1 - fy) + c01 * fy
                                        let c1 = c10 * (1 - fy) + c11 * fy
                                        dst[c * count + o] = Float(c0 * (1 - fz) + c1 * fz)
                                    }
                                }
                            }
                        }
                        inside[k] = hits
                    }
                }
            }
        }
        var result = Volume(
            data: out, channels: channels, depth: gz, height: gy, width: gx, spacing: grid.spacing,
            affine: grid.affine, header: grid.header)
        // The grid's header describes its own channel count; keep only its geometry.
        result.header.dim = Array(grid.header.dim.prefix(grid.is2D ? 2 : 3)) + (channels > 1 ? [channels] : [])
        result.header.pixdim = Array(grid.header.pixdim.prefix(grid.is2D ? 2 : 3)) + (channels > 1 ? [1] : [])
        result.header.intentCode = 0
        result.header.intentName = ""
        result.header.datatype = .float32
        return (result, insidePerSlice.reduce(0, +))
    }
}

extension Volume {
    /// This volume on a grid of voxel size `spacing` (mm, NIfTI order x, y, z) covering the same
    /// box (`VoxelArray.resampled(toSpacing:)`: linear for images, nearest for labels), with the
    /// affine updated so the result overlays the original in world space: new voxel `i` sits at
    /// old voxel coordinate `(i + 0.5)·r − 0.5` with `r = n_old / n_new` per axis.
    public func resampled(toSpacing spacing: SIMD3<Double>, linear: Bool) -> Volume {
        let array = VoxelArray(self).resampled(toSpacing: AxisOrder.dhw(fromXYZ: spacing), linear: linear)
        let (d, h, w) = (array.shape[0], array.shape[1], array.shape[2])
        let ratio = SIMD3(Double(width) / Double(w), Double(height) / Double(h), Double(depth) / Double(d))
        var scale = Affine.identity.matrix
        for axis in 0..<3 {
            scale[axis][axis] = ratio[axis]
            scale[axis][3] = (ratio[axis] - 1) / 2
        }
        let affine = self.affine * Affine(matrix: scale)
        return Volume(
            channels: channels, depth: d, height: h, width: w, data: array.data, spacing: affine.voxelSizes,
            affine: affine)
    }
}
