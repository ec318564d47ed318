import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// Displacement fields in ITK's convention (LPS mm, fixed → moving) against MorphoSeg's voxel
/// form, on grids where every sign and axis matters: rotated, anisotropic and with a flipped axis.
final class ITKDisplacementFieldTests: XCTestCase {
    /// A 5×4×3 grid rotated 30° about (1, 1, 1)/√3, voxels 1.5 × 2 × 3 mm, its y axis flipped.
    func obliqueGrid() -> Volume {
        let (c, s) = (cos(Double.pi / 6), sin(Double.pi / 6))
        let k = 1 / 3.0.squareRoot()
        let (x, y, z) = (k, k, k)
        // Rodrigues' rotation matrix about the unit axis (x, y, z).
        let r: [[Double]] = [
            [c + x * x * (1 - c), x * y * (1 - c) - z * s, x * z * (1 - c) + y * s],
            [y * x * (1 - c) + z * s, c + y * y * (1 - c), y * z * (1 - c) - x * s],
            [z * x * (1 - c) - y * s, z * y * (1 - c) + x * s, c + z * z * (1 - c)],
        ]
        let scale = [1.5, -2.0, 3.0]
        var m = Affine.identity.matrix
        for row in 0..<3 {
            for col in 0..<3 { m[row][col] = r[row][col] * scale[col] }
        }
        m[0][3] = -20; m[1][3] = 15; m[2][3] = 7
        return Volume(
            depth: 3, height: 4, width: 5, data: [Float](repeating: 0, count: 60), spacing: SIMD3(1.5, 2, 3),
            affine: Affine(matrix: m))
    }

    /// The voxel-form field of the world (RAS) translation `w`: at voxel p, `M⁻¹(M p + w) − p`.
    func voxelField(translating w: SIMD3<Double>, on grid: Volume, components: Int) -> Volume {
        let count = grid.spatialCount
        var data = [Float](repeating: 0, count: components * count)
        let inverse = grid.affine.inverse
        for k in 0..<grid.depth {
            for j in 0..<grid.height {
                for i in 0..<grid.width {
                    let p = SIMD3(Double(i), Double(j), Double(k))
                    let q = inverse.apply(grid.affine.apply(p) + w)
                    let v = (k * grid.height + j) * grid.width + i
                    for c in 0..<components { data[c * count + v] = Float(q[c] - p[c]) }
                }
            }
        }
        return Volume(
            channels: components, depth: grid.depth, height: grid.height, width: grid.width, data: data,
            spacing: grid.spacing, affine: grid.affine)
    }

    func testWorldTranslationOnAnObliqueGridIsStoredAsLPSMillimetres() throws {
        let grid = obliqueGrid()
        let w = SIMD3<Double>(3, -1, 2)
        let voxels = voxelField(translating: w, on: grid, components: 3)
        let field = ITKDisplacementField(voxels: voxels)
        let n = grid.spatialCount
        for v in 0..<n {
            XCTAssertEqual(field.volume.data[v], Float(-w.x), accuracy: 1e-5)
            XCTAssertEqual(field.volume.data[n + v], Float(-w.y), accuracy: 1e-5)
            XCTAssertEqual(field.volume.data[2 * n + v], Float(w.z), accuracy: 1e-5)
        }

        let folder = try temporaryFolder("transforms")
        try field.write(to: folder + "/f.nii.gz")
        let header = try NIfTI.readHeader(folder + "/f.nii.gz")
        XCTAssertEqual(header.dim, [5, 4, 3, 1, 3])
        XCTAssertEqual(header.intentCode, 1007)
        XCTAssertEqual(header.datatype, .float32)
        XCTAssertTrue(header.bestAffine.isApproximatelyEqual(to: grid.affine, tolerance: 1e-5))

        let back = try ITKDisplacementField.read(folder + "/f.nii.gz")
        XCTAssertEqual(back.volume.data, field.volume.data)
        for (a, b) in zip(back.voxels.data, voxels.data) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testMorphoSegVoxelFilesAreRecognisedAndConverted() throws {
        let grid = obliqueGrid()
        let w = SIMD3<Double>(-0.5, 4, 1)
        let field = ITKDisplacementField(voxels: voxelField(translating: w, on: grid, components: 3))
        let folder = try temporaryFolder("transforms")
        try field.writeVoxels(to: folder + "/v.nii.gz")
        let header = try NIfTI.readHeader(folder + "/v.nii.gz")
        XCTAssertEqual(header.intentName, ITKDisplacementField.voxelIntentName)
        XCTAssertTrue(ITKDisplacementField.isVoxelForm(header))
        let back = try ITKDisplacementField.read(folder + "/v.nii.gz")
        for (a, b) in zip(back.volume.data, field.volume.data) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testTwoDimensionalFieldsHaveTwoLPSComponents() throws {
        // A 2D grid rotated 20° in plane, 0.8 × 1.7 mm, its y axis flipped.
        let (c, s) = (cos(0.35), sin(0.35))
        var m = Affine.identity.matrix
        m[0][0] = c * 0.8; m[0][1] = s * 1.7; m[0][3] = 4
        m[1][0] = s * 0.8; m[1][1] = -c * 1.7; m[1][3] = -9
        let grid = Volume(depth: 1, height: 3, width: 4, data: [Float](repeating: 0, count: 12),
                          spacing: SIMD3(0.8, 1.7, 1), affine: Affine(matrix: m))
        let w = SIMD3<Double>(2, -3, 0)
        let field = ITKDisplacementField(voxels: voxelField(translating: w, on: grid, components: 2))
        XCTAssertEqual(field.dimension, 2)
        let n = grid.spatialCount
        for v in 0..<n {
            XCTAssertEqual(field.volume.data[v], Float(-w.x), accuracy: 1e-5)
            XCTAssertEqual(field.volume.data[n + v], Float(-w.y), accuracy: 1e-5)
        }
        let folder = try temporaryFolder("transforms")
        try field.write(to: folder + "/f2.nii.gz")
        XCTAssertEqual(try NIfTI.readHeader(folder + "/f2.nii.gz").dim, [4, 3, 1, 1, 2])
        let back = try ITKDisplacementField.read(folder + "/f2.nii.gz")
        XCTAssertEqual(back.dimension, 2)
        XCTAssertEqual(back.volume.data, field.volume.data)
    }

    func testFilesWithTheWrongComponentCountAreRefused() throws {
        let folder = try temporaryFolder("transforms")
        let four = Volume(channels: 4, depth: 2, height: 2, width: 2, data: [Float](repeating: 0, count: 32))
        try NIfTI.write(four, to: folder + "/four.nii")
        XCTAssertThrowsError(try ITKDisplacementField.read(folder + "/four.nii")) {
            guard case .badTransformFile = $0 as? MorphoIOError else { return XCTFail("\($0)") }
        }
    }
}
