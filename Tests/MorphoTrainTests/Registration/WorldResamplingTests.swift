import Foundation
import XCTest
import MorphoIO
import MorphoTensor
@testable import MorphoTrain

/// Resampling volumes in world coordinates.
final class WorldResamplingTests: XCTestCase {
    func testResampledVolumeOverlaysTheOriginalInWorldSpace() {
        let affine = Affine(matrix: [[1, 0, 0, -10], [0, 1, 0, 5], [0, 0, 1, 2], [0, 0, 0, 1]])
        var data = [Float](repeating: 0, count: 8 * 6 * 4)
        for i in data.indices { data[i] = Float(i % 8) }   // the x index
        let v = Volume(depth: 4, height: 6, width: 8, data: data, affine: affine)
        let half = v.resampled(toSpacing: SIMD3(2, 2, 2), linear: true)
        XCTAssertEqual(half.spatialShape, [2, 3, 4])
        XCTAssertEqual(half.spacing, SIMD3(2, 2, 2))
        // New voxel 0 covers old voxels 0 and 1: centre at old x = 0.5, world −9.5.
        XCTAssertEqual(half.affine.apply(SIMD3(0, 0, 0)).x, -9.5, accuracy: 1e-9)
        XCTAssertEqual(half[0, 0, 0, 0], 0.5, accuracy: 1e-6)
        XCTAssertEqual(half[0, 1, 2, 3], 6.5, accuracy: 1e-6)
    }

    /// An oblique affine `[R·diag(s) | t]` (rotations about z then x) and its inverse written out
    /// by hand, `q = diag(1/s)·Rᵀ·(x − t)`, so the expected values use no library inverse.
    struct ObliqueGrid {
        var r: [[Double]], s: [Double], t: [Double]

        init(about z: Double, _ x: Double, spacing: [Double], origin: [Double]) {
            let rz = [[cos(z), -sin(z), 0], [sin(z), cos(z), 0], [0, 0, 1]]
            let rx = [[1, 0, 0], [0, cos(x), -sin(x)], [0, sin(x), cos(x)]]
            r = (0..<3).map { i in (0..<3).map { j in (0..<3).map { rx[i][$0] * rz[$0][j] }.reduce(0, +) } }
            s = spacing
            t = origin
        }

        var affine: Affine {
            var m = Affine.identity.matrix
            for i in 0..<3 {
                for j in 0..<3 { m[i][j] = r[i][j] * s[j] }
                m[i][3] = t[i]
            }
            return Affine(matrix: m)
        }

        func world(_ q: [Double]) -> [Double] {
            (0..<3).map { (i: Int) -> Double in
                var sum = t[i]
                for j in 0..<3 { sum += r[i][j] * s[j] * q[j] }
                return sum
            }
        }

        func voxel(_ x: [Double]) -> [Double] {
            (0..<3).map { (j: Int) -> Double in
                var sum = 0.0
                for i in 0..<3 { sum += r[i][j] * (x[i] - t[i]) }
                return sum / s[j]
            }
        }
    }

    /// Values linear in the source voxel index: trilinear interpolation reproduces them exactly.
    func linearInIndex(_ q: [Double]) -> Double { 1 + 2 * q[0] + 3 * q[1] + 5 * q[2] }

    func testResamplingAnObliqueVolumeOntoAFlippedGridSamplesTheSameWorldPoints() {
        let oblique = ObliqueGrid(about: 0.4, 0.25, spacing: [1.1, 0.9, 1.3], origin: [-3, 4, 2])
        let (nx, ny, nz) = (14, 12, 10)
        var data = [Float](repeating: 0, count: nx * ny * nz)
        for k in 0..<nz { for j in 0..<ny { for i in 0..<nx {
            data[(k * ny + j) * nx + i] = Float(linearInIndex([Double(i), Double(j), Double(k)]))
        } } }
        let source = Volume(depth: nz, height: ny, width: nx, data: data, spacing: SIMD3(1.1, 0.9, 1.3), affine: oblique.affine)
        // The grid: x and z flipped (negative diagonal), 1 × 1 × 1.2 mm, centred on the source's
        // centre; every point lies within 4.2 mm of it, inside the source (nearest face 4.95 mm).
        let c = oblique.world([6.5, 5.5, 4.5])
        let g = [[-1.0, 0, 0, c[0] + 3], [0, 1, 0, c[1] - 2], [0, 0, -1.2, c[2] + 1.8], [0, 0, 0, 1]]
        let grid = Volume(depth: 4, height: 5, width: 7, data: [Float](repeating: 0, count: 140), spacing: SIMD3(1, 1, 1.2),
                          affine: Affine(matrix: g))
        for interpolation in [SamplingMode.linear, .nearest] {
            let (out, inside) = WorldResampling.resample(source, onto: grid, interpolation: interpolation)
            XCTAssertEqual(inside, 140)
            for k in 0..<4 { for j in 0..<5 { for i in 0..<7 {
                let p = [Double(i), Double(j), Double(k)]
                let x: [Double] = (0..<3).map { (row: Int) -> Double in g[row][0] * p[0] + g[row][1] * p[1] + g[row][2] * p[2] + g[row][3] }
                let q = oblique.voxel(x)
                let expected = interpolation == .linear ? linearInIndex(q) : linearInIndex(q.map { $0.rounded() })
                XCTAssertEqual(Double(out.data[(k * 5 + j) * 7 + i]), expected, accuracy: 1e-3, "\(interpolation) voxel \(p) at source \(q)")
            } } }
        }
    }

    func testResampledToSpacingKeepsAnObliqueFlippedVolumeInPlace() {
        // Oblique with x flipped: the columns of the affine are R·diag(−1, 1, 1.5).
        var oblique = ObliqueGrid(about: -0.3, 0.2, spacing: [1, 1, 1.5], origin: [5, -7, 3])
        oblique.s = [-1, 1, 1.5]
        let (nx, ny, nz) = (12, 10, 8)
        var data = [Float](repeating: 0, count: nx * ny * nz)
        for k in 0..<nz { for j in 0..<ny { for i in 0..<nx {
            data[(k * ny + j) * nx + i] = Float(linearInIndex([Double(i), Double(j), Double(k)]))
        } } }
        let volume = Volume(depth: nz, height: ny, width: nx, data: data, spacing: SIMD3(1, 1, 1.5), affine: oblique.affine)
        let coarse = volume.resampled(toSpacing: SIMD3(2, 2, 3), linear: true)
        XCTAssertEqual(coarse.spatialShape, [4, 5, 6])
        XCTAssertEqual(coarse.spacing.x, 2, accuracy: 1e-9)
        XCTAssertEqual(coarse.spacing.z, 3, accuracy: 1e-9)
        // New voxel p covers old voxels 2p and 2p + 1: its centre is old coordinate 2p + 0.5,
        // at world A_old·(2p + 0.5), where the value is the old image's there.
        for k in 0..<4 { for j in 0..<5 { for i in 0..<6 {
            let q = [2 * Double(i) + 0.5, 2 * Double(j) + 0.5, 2 * Double(k) + 0.5]
            let expected = oblique.world(q), got = coarse.affine.apply(SIMD3(Double(i), Double(j), Double(k)))
            for a in 0..<3 { XCTAssertEqual(got[a], expected[a], accuracy: 1e-9, "world of new voxel \([i, j, k])") }
            XCTAssertEqual(Double(coarse[0, k, j, i]), linearInIndex(q), accuracy: 1e-3, "value of new voxel \([i, j, k])")
        } } }
        // The first column still points along −R·x: the flip is kept, not folded into a positive spacing.
        XCTAssertEqual(coarse.affine.matrix[0][0], -2 * oblique.r[0][0], accuracy: 1e-9)
    }
}
