import XCTest
import MorphoIO
import MorphoTensor
@testable import MorphoTrain

final class RegistrationPairTests: XCTestCase {
    let files = RegistrationPairFiles(fixed: "fixed.nii.gz", moving: "moving.nii.gz",
                                      fixedLabels: "fixed_seg.nii.gz", movingLabels: "moving_seg.nii.gz")

    /// `value(z, y, x)` on a `d × h × w` grid with `affine`.
    func volume(_ d: Int, _ h: Int, _ w: Int, affine: Affine = .identity, _ value: (Int, Int, Int) -> Float) -> Volume {
        var data = [Float](repeating: 0, count: d * h * w)
        for z in 0..<d { for y in 0..<h { for x in 0..<w { data[(z * h + y) * w + x] = value(z, y, x) } } }
        return Volume(depth: d, height: h, width: w, data: data, affine: affine)
    }

    func translation(_ t: SIMD3<Double>, spacing: Double = 1) -> Affine {
        Affine(matrix: [[spacing, 0, 0, t.x], [0, spacing, 0, t.y], [0, 0, spacing, t.z], [0, 0, 0, 1]])
    }

    func testMovingOnTheFixedGridIsKeptAsIs() throws {
        let fixed = volume(3, 4, 5) { z, y, x in Float(x + y + z) }
        let moving = volume(3, 4, 5) { z, y, x in Float(x * y * z) }
        let pair = try RegistrationPair(fixed: fixed, moving: moving, files: files)
        XCTAssertEqual(pair.moving.data, moving.data)
        XCTAssertEqual(pair.overlap, 1)
    }

    func testMovingIsResampledThroughWorldCoordinates() throws {
        // The moving grid starts 2 mm further along x and 1 mm along z, at 2 mm voxels: fixed voxel
        // (i, j, k) is world (i, j, k), moving voxel ((i − 2)/2, j/2, (k − 1)/2).
        let fixed = volume(5, 6, 8) { _, _, _ in 1 }
        let moving = volume(4, 4, 5, affine: translation(SIMD3(2, 0, 1), spacing: 2)) { z, y, x in Float(100 * z + 10 * y + x) }
        let labels = volume(4, 4, 5, affine: translation(SIMD3(2, 0, 1), spacing: 2)) { z, y, x in Float((x + y + z) % 3) }
        let pair = try RegistrationPair(fixed: fixed, moving: moving, movingLabels: labels, files: files)
        XCTAssertTrue(pair.moving.sameGrid(as: fixed))
        // Fixed (i=6, j=4, k=3) → moving (2, 2, 1): a voxel centre, value 100 + 20 + 2.
        XCTAssertEqual(pair.moving[0, 3, 4, 6], 122, accuracy: 1e-4)
        // Fixed (i=5, j=4, k=3) → moving (1.5, 2, 1): halfway between 121 and 122.
        XCTAssertEqual(pair.moving[0, 3, 4, 5], 121.5, accuracy: 1e-4)
        // Fixed i=0 → moving x = −1: outside the moving field of view.
        XCTAssertEqual(pair.moving[0, 3, 4, 0], 0)
        XCTAssertLessThan(pair.overlap, 1)
        XCTAssertGreaterThan(pair.overlap, 0.5)
        // Labels use nearest neighbour: only values the map holds.
        XCTAssertTrue(pair.movingLabels!.data.allSatisfy { [0, 1, 2].contains($0) })
        XCTAssertEqual(pair.movingLabels![0, 3, 4, 6], Float((2 + 2 + 1) % 3))
    }

    func testImagesThatDoNotOverlapInWorldSpaceAreRefusedNamingTheMovingFile() {
        let fixed = volume(4, 4, 4) { _, _, _ in 1 }
        let moving = volume(4, 4, 4, affine: translation(SIMD3(100, 0, 0))) { _, _, _ in 1 }
        XCTAssertThrowsError(try RegistrationPair(fixed: fixed, moving: moving, files: files)) { error in
            XCTAssertEqual(error as? MorphoTrainError, .noOverlap(fixed: "fixed.nii.gz", moving: "moving.nii.gz"))
            XCTAssertTrue("\(error)".hasPrefix("moving.nii.gz: does not overlap fixed.nii.gz"), "\(error)")
        }
    }

    func testNaNVoxelsAreRefusedNamingTheFile() {
        let fixed = volume(4, 4, 4) { z, _, _ in z == 2 ? .nan : 1 }
        let moving = volume(4, 4, 4) { _, _, _ in 1 }
        XCTAssertThrowsError(try RegistrationPair(fixed: fixed, moving: moving, files: files)) { error in
            XCTAssertEqual(error as? MorphoTrainError, .nonFiniteVoxels(path: "fixed.nii.gz", count: 16))
            XCTAssertEqual("\(error)", "fixed.nii.gz: 16 voxels are NaN or infinite (to replace them: --nan-as V, or data.nan_as in a training config)")
        }
    }

    func testLabelMapOnAnotherGridThanItsImageIsRefusedNamingTheLabelFile() {
        let fixed = volume(4, 4, 4) { _, _, _ in 1 }
        let moving = volume(4, 4, 4) { _, _, _ in 1 }
        let shiftedLabels = volume(4, 4, 4, affine: translation(SIMD3(1, 0, 0))) { _, _, _ in 1 }
        let smallLabels = volume(4, 4, 3) { _, _, _ in 1 }
        XCTAssertThrowsError(try RegistrationPair(fixed: fixed, moving: moving, movingLabels: shiftedLabels, files: files)) { error in
            XCTAssertTrue("\(error)".hasPrefix("moving_seg.nii.gz: label map grid"), "\(error)")
        }
        XCTAssertThrowsError(try RegistrationPair(fixed: fixed, moving: moving, fixedLabels: smallLabels, files: files)) { error in
            XCTAssertTrue("\(error)".hasPrefix("fixed_seg.nii.gz: label map grid (x, y, z) [3, 4, 4]"), "\(error)")
        }
    }

    func testLoadingFromFilesReportsTheMissingFile() throws {
        let missing = RegistrationPairFiles(fixed: "/nonexistent/f.nii.gz", moving: "/nonexistent/m.nii.gz")
        XCTAssertThrowsError(try RegistrationPair.load(missing)) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/f.nii.gz"), "\(error)")
        }
    }
}
