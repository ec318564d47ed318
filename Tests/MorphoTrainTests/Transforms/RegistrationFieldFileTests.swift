import Foundation
import MorphoIO
import MorphoTensor
import MorphoTrain
import XCTest

/// What `morphoseg register --output-field` writes: ITK's convention by default (read back and
/// applied the ANTs way, it reproduces MorphoSeg's own warped image), MorphoSeg's voxel form
/// with `--field-units voxels`.
final class RegistrationFieldFileTests: XCTestCase {
    /// A pair on a rotated, anisotropic grid and a constant voxel flow of (z, y, x) = (0.5, −1, 1.5).
    func registered() throws -> (RegistrationResult, RegistrationPair) {
        let grid = TransformFixtures.grid(14, 12, 10, spacing: SIMD3(1.2, 0.8, 1.5), angle: 0.4, origin: SIMD3(3, -2, 1))
        let fixed = TransformFixtures.image(on: grid) { 1 + 0.01 * $0.x * $0.x + 0.05 * $0.y - 0.02 * $0.z }
        let moving = TransformFixtures.image(on: grid) { 2 + 0.03 * $0.x * $0.y + 0.04 * $0.z }
        let pair = try RegistrationPair(fixed: fixed, moving: moving, files: RegistrationPairFiles(fixed: "f", moving: "m"))
        let n = grid.spatialCount
        let flow = Tensor(shape: [1, 3, 10, 12, 14]) { p in
            for v in 0..<n { p[v] = 0.5; p[n + v] = -1; p[2 * n + v] = 1.5 }
        }
        return (RegistrationResult(flow: flow, pair: pair), pair)
    }

    func testTheDefaultFieldIsITKsAndReproducesTheWarpedImageWhenAppliedTheANTsWay() throws {
        let (result, pair) = try registered()
        let folder = try TransformFixtures.folder(self)
        try result.write(warped: folder + "/w.nii.gz", field: folder + "/u.nii.gz", pair: pair)
        let header = try NIfTI.readHeader(folder + "/u.nii.gz")
        XCTAssertEqual(header.intentCode, 1007)
        XCTAssertFalse(ITKDisplacementField.isVoxelForm(header))
        let field = try ITKDisplacementField.read(folder + "/u.nii.gz")
        // The voxel step (i, j, k) = (1.5, −1, 0.5) in world RAS is L·d, stored as LPS (−x, −y, z).
        let ras = pair.fixed.affine.apply(SIMD3(1.5, -1, 0.5)) - pair.fixed.affine.apply(SIMD3(0, 0, 0))
        let n = pair.fixed.spatialCount
        XCTAssertEqual(Double(field.volume.data[0]), -ras.x, accuracy: 1e-5)
        XCTAssertEqual(Double(field.volume.data[n]), -ras.y, accuracy: 1e-5)
        XCTAssertEqual(Double(field.volume.data[2 * n]), ras.z, accuracy: 1e-5)
        let applied = TransformApplication.apply(
            TransformChain([.field(field)]), to: pair.moving, reference: pair.fixed, interpolation: .linear)
        // Inside (away from the faces, where MorphoSeg pads with zeros and ITK clamps).
        let g = pair.fixed
        for k in 1..<(g.depth - 1) {
            for j in 2..<(g.height - 2) {
                for i in 2..<(g.width - 2) {
                    let v = (k * g.height + j) * g.width + i
                    XCTAssertEqual(applied.data[v], result.warped.data[v], accuracy: 1e-4)
                }
            }
        }
    }

    func testVoxelUnitsWriteMorphoSegsVoxelFormNamedAsSuch() throws {
        let (result, pair) = try registered()
        let folder = try TransformFixtures.folder(self)
        try result.write(warped: folder + "/w.nii.gz", field: folder + "/v.nii.gz", fieldUnits: .voxels, pair: pair)
        try result.write(warped: folder + "/w.nii.gz", field: folder + "/u.nii.gz", fieldUnits: .mm, pair: pair)
        let raw = try NIfTI.read(folder + "/v.nii.gz")
        XCTAssertEqual(raw.header.intentName, ITKDisplacementField.voxelIntentName)
        let n = pair.fixed.spatialCount
        XCTAssertEqual(Array(raw.data[0..<n]), [Float](repeating: 1.5, count: n))
        XCTAssertEqual(Array(raw.data[n..<2 * n]), [Float](repeating: -1, count: n))
        let viaVoxels = try ITKDisplacementField.read(folder + "/v.nii.gz")
        let viaMM = try ITKDisplacementField.read(folder + "/u.nii.gz")
        for (a, b) in zip(viaVoxels.volume.data, viaMM.volume.data) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }
}
