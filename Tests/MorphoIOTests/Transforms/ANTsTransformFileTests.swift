import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// Files ANTs wrote (see `Data/transforms/README.md`) read as ANTs reads them.
final class ANTsTransformFileTests: XCTestCase {
    let folder = testDataFolder + "/transforms"

    func testANTsBinaryAndTextFormsOfOneAffineAgree() throws {
        let mat = try ITKTransformFile.read(folder + "/ants_0GenericAffine.mat")
        let txt = try ITKTransformFile.read(folder + "/ants_0GenericAffine.txt")
        XCTAssertEqual(mat.dimension, 3)
        XCTAssertEqual(mat.center.count, 3)
        XCTAssertTrue(mat.isApproximatelyEqual(to: txt, tolerance: 1e-9))
        for (a, b) in zip(mat.center, txt.center) { XCTAssertEqual(a, b, accuracy: 1e-9) }
        // Written back as .mat (double) and read again: the same transform.
        let out = try temporaryFolder("transforms") + "/again.mat"
        try ITKTransformFile.write(mat, to: out)
        XCTAssertEqual(try ITKTransformFile.read(out), mat)
    }

    func testANTsWarpIsAnLPSFieldOnTheFixedGrid() throws {
        let warp = try ITKDisplacementField.read(folder + "/ants_1Warp.nii.gz")
        let header = try NIfTI.readHeader(folder + "/ants_1Warp.nii.gz")
        let fixed = try NIfTI.read(folder + "/fixed.nii.gz")
        XCTAssertFalse(ITKDisplacementField.isVoxelForm(header))
        XCTAssertEqual(header.intentCode, 1007)
        XCTAssertEqual(header.dim, [fixed.width, fixed.height, fixed.depth, 1, 3])
        XCTAssertEqual(warp.dimension, 3)
        XCTAssertTrue(warp.volume.sameGrid(as: fixed))
        // Written in ITK's convention and read back: unchanged.
        let out = try temporaryFolder("transforms") + "/warp.nii.gz"
        try warp.write(to: out, like: fixed)
        XCTAssertEqual(try ITKDisplacementField.read(out).volume.data, warp.volume.data)
    }
}
