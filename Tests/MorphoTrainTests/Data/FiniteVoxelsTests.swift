import XCTest
@testable import MorphoTrain

/// `checkFiniteVoxels`, the one check every image, label map and registration input goes through.
final class FiniteVoxelsTests: XCTestCase {
    func testFiniteValuesPassIncludingTheExtremes() throws {
        try checkFiniteVoxels([0, -0, 1, -Float.greatestFiniteMagnitude, .greatestFiniteMagnitude, .leastNonzeroMagnitude], path: "a.nii.gz")
        try checkFiniteVoxels([], path: "empty.nii.gz")
    }

    func testEveryNaNAndInfinityIsCountedAndTheFileNamed() {
        var values = [Float](repeating: 1, count: 20)
        let bad: [Int: Float] = [0: .nan, 7: .infinity, 8: -.infinity, 19: -.nan]
        for (i, v) in bad { values[i] = v }
        XCTAssertThrowsError(try checkFiniteVoxels(values, path: "scan.nii.gz")) { error in
            XCTAssertEqual(error as? MorphoTrainError, .nonFiniteVoxels(path: "scan.nii.gz", count: bad.count))
            XCTAssertEqual("\(error)", "scan.nii.gz: \(bad.count) voxels are NaN or infinite (to replace them: --nan-as V, or data.nan_as in a training config)")
        }
    }

    func testOneBadVoxelIsReportedInTheSingular() {
        XCTAssertThrowsError(try checkFiniteVoxels([1, .nan, 2], path: "b.nii.gz")) { error in
            XCTAssertEqual("\(error)", "b.nii.gz: 1 voxel is NaN or infinite (to replace them: --nan-as V, or data.nan_as in a training config)")
        }
    }
}
