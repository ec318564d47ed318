import Foundation
import MorphoIO
import MorphoTrain
import XCTest

/// Grids and images whose resampled values can be computed by hand: an image whose value is an
/// affine function of the world position is reproduced exactly by linear interpolation.
enum TransformFixtures {
    /// A `nx × ny × nz` grid with voxels `spacing` mm, rotated `angle` radians about z, origin `origin` (RAS).
    static func grid(_ nx: Int, _ ny: Int, _ nz: Int, spacing: SIMD3<Double> = SIMD3(1, 1, 1), angle: Double = 0,
                     origin: SIMD3<Double> = SIMD3(0, 0, 0)) -> Volume {
        var m = Affine.identity.matrix
        let (c, s) = (cos(angle), sin(angle))
        m[0][0] = c * spacing.x; m[0][1] = -s * spacing.y
        m[1][0] = s * spacing.x; m[1][1] = c * spacing.y
        m[2][2] = spacing.z
        m[0][3] = origin.x; m[1][3] = origin.y; m[2][3] = origin.z
        return Volume(depth: nz, height: ny, width: nx, data: [Float](repeating: 0, count: nx * ny * nz),
                      spacing: spacing, affine: Affine(matrix: m))
    }

    /// `grid` filled with `f(world RAS position of the voxel centre)`.
    static func image(on grid: Volume, _ f: (SIMD3<Double>) -> Double) -> Volume {
        var out = grid
        for k in 0..<grid.depth {
            for j in 0..<grid.height {
                for i in 0..<grid.width {
                    out[0, k, j, i] = Float(f(grid.affine.apply(SIMD3(Double(i), Double(j), Double(k)))))
                }
            }
        }
        return out
    }

    /// World (RAS) position of voxel `v` (flat index) of `grid`.
    static func world(_ grid: Volume, _ v: Int) -> SIMD3<Double> {
        let i = v % grid.width, j = (v / grid.width) % grid.height, k = v / (grid.width * grid.height)
        return grid.affine.apply(SIMD3(Double(i), Double(j), Double(k)))
    }

    /// RAS → LPS (and back).
    static func flip(_ p: SIMD3<Double>) -> SIMD3<Double> { SIMD3(-p.x, -p.y, p.z) }

    /// A temporary folder removed after the test.
    static func folder(_ testCase: XCTestCase) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("transforms-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        testCase.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }
}
