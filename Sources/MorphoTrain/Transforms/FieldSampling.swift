import MorphoIO
import MorphoKernels

/// A displacement field evaluated at arbitrary points the way ITK's `DisplacementFieldTransform`
/// does: the point's continuous voxel index on the field's grid; inside the grid (within half a
/// voxel of the outermost voxel centres) the components are interpolated linearly, with
/// neighbours past the border clamped onto it; outside, the displacement is zero.
enum FieldSampling {
    /// Adds the field's displacement to every point: `points[:, v] += u(points[:, v])`.
    ///
    /// - Parameters:
    ///   - points: `[3, count]` channel-major, LPS mm (x's, then y's, then z's), updated in place.
    ///   - field: LPS mm on its own grid; a 2D field moves x and y only and ignores z.
    static func displace(_ points: UnsafeMutablePointer<Double>, count: Int, by field: ITKDisplacementField) {
        let grid = field.volume
        let (nx, ny, nz) = (grid.width, grid.height, grid.depth)
        let n = grid.spatialCount
        let components = field.volume.channels
        let planar = field.dimension == 2
        // World (LPS) → continuous index: M⁻¹ · F.
        let m = PointMatrix(grid.affine.inverse * ITKAffineTransform.flip)
        grid.data.withUnsafeBufferPointer { buffer in
            let u = buffer.baseAddress!
            let ux = u, uy = u + n, uz = u + (components > 2 ? 2 * n : 0)
            Parallel.forRanges(count, grain: 4096) { range in
                for v in range {
                    let x = points[v], y = points[count + v], z = points[2 * count + v]
                    let (qx, qy, qz) = m.apply(x, y, z)
                    guard let corners = LinearCorners(qx, qy, planar ? 0 : qz, nx, ny, nz) else { continue }
                    points[v] = x + corners.interpolate(ux, nx, ny)
                    points[count + v] = y + corners.interpolate(uy, nx, ny)
                    if components > 2 { points[2 * count + v] = z + corners.interpolate(uz, nx, ny) }
                }
            }
        }
    }
}

/// The eight corners and weights of a linear sample at continuous index `(qx, qy, qz)` on an
/// `nx × ny × nz` grid, ITK's way: `nil` outside `[−0.5, n − 0.5]` on any axis; inside, corners
/// past the border are clamped onto it (so a sample near the edge is not darkened).
struct LinearCorners {
    var x0: Int, x1: Int, y0: Int, y1: Int, z0: Int, z1: Int
    var fx: Double, fy: Double, fz: Double

    @inline(__always)
    init?(_ qx: Double, _ qy: Double, _ qz: Double, _ nx: Int, _ ny: Int, _ nz: Int) {
        guard qx >= -0.5, qx <= Double(nx) - 0.5, qy >= -0.5, qy <= Double(ny) - 0.5,
              qz >= -0.5, qz <= Double(nz) - 0.5 else { return nil }
        let bx = qx.rounded(.down), by = qy.rounded(.down), bz = qz.rounded(.down)
        fx = qx - bx; fy = qy - by; fz = qz - bz
        let ix = Int(bx), iy = Int(by), iz = Int(bz)
        x0 = min(max(ix, 0), nx - 1); x1 = min(max(ix + 1, 0), nx - 1)
        y0 = min(max(iy, 0), ny - 1); y1 = min(max(iy + 1, 0), ny - 1)
        z0 = min(max(iz, 0), nz - 1); z1 = min(max(iz + 1, 0), nz - 1)
    }

    /// Offsets of the eight corners in a `[nz, ny, nx]` volume: `(z, y, x)` bits 0 and 1 in
    /// the order 000, 001, 010, 011, 100, 101, 110, 111 (x fastest).
    @inline(__always)
    func offsets(_ nx: Int, _ ny: Int) -> (Int, Int, Int, Int, Int, Int, Int, Int) {
        let r00 = (z0 * ny + y0) * nx, r01 = (z0 * ny + y1) * nx
        let r10 = (z1 * ny + y0) * nx, r11 = (z1 * ny + y1) * nx
        return (r00 + x0, r00 + x1, r01 + x0, r01 + x1, r10 + x0, r10 + x1, r11 + x0, r11 + x1)
    }

    /// The weights of those corners, in the same order.
    @inline(__always)
    var weights: (Double, Double, Double, Double, Double, Double, Double, Double) {
        let gx = 1 - fx, gy = 1 - fy, gz = 1 - fz
        return (gz * gy * gx, gz * gy * fx, gz * fy * gx, gz * fy * fx, fz * gy * gx, fz * gy * fx, fz * fy * gx, fz * fy * fx)
    }

    /// The linear sample of `p` (`[nz, ny, nx]`).
    @inline(__always)
    func interpolate(_ p: UnsafePointer<Float>, _ nx: Int, _ ny: Int) -> Double {
        let o = offsets(nx, ny)
        let w = weights
        return w.0 * Double(p[o.0]) + w.1 * Double(p[o.1]) + w.2 * Double(p[o.2]) + w.3 * Double(p[o.3])
            + w.4 * Double(p[o.4]) + w.5 * Double(p[o.5]) + w.6 * Double(p[o.6]) + w.7 * Double(p[o.7])
    }
}
