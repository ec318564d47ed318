// Affine resampling for preprocessing: put a volume on another voxel grid (a common grid
// across a dataset, a target spacing, a crop) given the voxel-to-voxel map between the grids.

/// Resamples every channel of `src` (`[channels, extent]`) onto the target grid
/// (`dst: [channels, targetExtent]`): target voxel `(x, y, z)` takes the source value at
/// `targetToSource · (x, y, z, 1)ᵀ`.
///
/// - Parameters:
///   - targetToSource: 4×4 matrix, row-major, acting on column vectors of voxel indices in
///     NIfTI order — `x` = W (i, fastest), `y` = H (j), `z` = D (k) — so `inverse(sourceAffine) ·
///     targetAffine` of two NIfTI voxel-to-world affines plugs in directly. The last row must be
///     `0 0 0 1`. For 2D data (`D = 1`) keep `z` at 0.
///   - linear: trilinear interpolation (bilinear in a `D = 1` plane) with voxel centres at
///     integer indices; otherwise nearest neighbour, rounding half to even.
///   - fill: the value outside the source volume. Linear samples treat the volume as padded
///     with `fill` (a sample straddling the border blends towards it); nearest samples whose
///     voxel is outside get `fill`.
/// Coordinates are computed in double precision; runs on `Parallel.threads` threads over rows.
public func resampleAffine(
    _ src: UnsafePointer<Float>, extent: SpatialExtent, channels: Int,
    into dst: UnsafeMutablePointer<Float>, targetExtent: SpatialExtent,
    targetToSource m: [Double], linear: Bool, fill: Float = 0
) {
    precondition(m.count == 16, "resampleAffine: expected a 4×4 row-major matrix, got \(m.count) numbers")
    precondition(m[12] == 0 && m[13] == 0 && m[14] == 0 && m[15] == 1, "resampleAffine: last row must be 0 0 0 1")
    let (d, h, w) = (extent.d, extent.h, extent.w)
    let t = targetExtent
    let srcVolume = extent.count, dstVolume = t.count
    Parallel.forRanges(t.d * t.h, grain: max(1, 4096 / t.w)) { rows in
        for row in rows {
            let z = Double(row / t.h), y = Double(row % t.h)
            // Source coordinates of x = 0 on this row, and their step per target voxel along x.
            let x0 = m[1] * y + m[2] * z + m[3], y0 = m[5] * y + m[6] * z + m[7], z0 = m[9] * y + m[10] * z + m[11]
            let out = dst + row * t.w
            for xi in 0..<t.w {
                let xd = Double(xi)
                let sx = x0 + m[0] * xd, sy = y0 + m[4] * xd, sz = z0 + m[8] * xd
                if linear {
                    let az = LinearAxis(Float(sz), size: d), ay = LinearAxis(Float(sy), size: h), ax = LinearAxis(Float(sx), size: w)
                    let r00 = (az.i0 * h + ay.i0) * w, r01 = (az.i0 * h + ay.i1) * w
                    let r10 = (az.i1 * h + ay.i0) * w, r11 = (az.i1 * h + ay.i1) * w
                    let outside = fill * (1 - (az.w0 + az.w1) * (ay.w0 + ay.w1) * (ax.w0 + ax.w1))
                    for c in 0..<channels {
                        let s = src + c * srcVolume
                        let v = az.w0 * (ay.w0 * (ax.w0 * s[r00 + ax.i0] + ax.w1 * s[r00 + ax.i1])
                                       + ay.w1 * (ax.w0 * s[r01 + ax.i0] + ax.w1 * s[r01 + ax.i1]))
                              + az.w1 * (ay.w0 * (ax.w0 * s[r10 + ax.i0] + ax.w1 * s[r10 + ax.i1])
                                       + ay.w1 * (ax.w0 * s[r11 + ax.i0] + ax.w1 * s[r11 + ax.i1]))
                        out[c * dstVolume + xi] = v + outside
                    }
                } else {
                    let iz = nearestIndex(sz, d), iy = nearestIndex(sy, h), ix = nearestIndex(sx, w)
                    let inside = iz >= 0 && iy >= 0 && ix >= 0
                    let at = (iz * h + iy) * w + ix
                    for c in 0..<channels { out[c * dstVolume + xi] = inside ? src[c * srcVolume + at] : fill }
                }
            }
        }
    }
}

/// The voxel nearest to coordinate `q` on an axis of `size` voxels (half to even), or −1
/// when it is outside (also for NaN and infinities).
@inline(__always) private func nearestIndex(_ q: Double, _ size: Int) -> Int {
    let r = q.rounded(.toNearestOrEven)
    return r >= 0 && r < Double(size) ? Int(r) : -1
}
