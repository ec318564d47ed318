import Foundation
import MorphoIO
import XCTest

/// `VolumeInfo` (what `morphoseg info --json` prints) against nibabel's view of real files.
final class VolumeInfoTests: XCTestCase {
    func testSmallFilesMatchNibabelExpectations() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: testDataFolder)
            .filter { $0.hasSuffix(".nii") || $0.hasSuffix(".nii.gz") }.sorted()
        XCTAssertEqual(files.count, 6)
        for name in files {
            try checkAgainstExpectation("\(testDataFolder)/\(name)", expected: "\(testDataFolder)/\(name).json")
        }
    }

    /// The 1.5–2 MB MNI templates stay in the shared data folder; skipped where it is absent.
    func testMNITemplatesMatchNibabelExpectations() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let candidates = ["/work/shared/data", repo.appendingPathComponent("../shared/data").standardized.path]
        guard let root = candidates.first(where: { FileManager.default.fileExists(atPath: "\($0)/mni152") }) else {
            throw XCTSkip("shared data folder with mni152/ not found")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(root)/mni152").filter { $0.hasSuffix(".nii.gz") }
        XCTAssertEqual(files.count, 3)
        for name in files.sorted() {
            try checkAgainstExpectation("\(root)/mni152/\(name)", expected: "\(root)/expected/\(name).json")
        }
    }

    func testJSONHasExactlyTheContractKeys() throws {
        let info = try VolumeInfo.read("\(testDataFolder)/standard.nii.gz")
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(info.json.utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["format", "dim", "datatype", "pixdim", "qform_code", "sform_code", "affine",
                                          "scl_slope", "scl_inter", "stats", "non_finite"])
        let stats = try XCTUnwrap(object["stats"] as? [String: Any])
        XCTAssertEqual(Set(stats.keys), ["min", "max", "mean", "sum"])
        XCTAssertFalse(info.json.contains("\n"))
    }

    func testSummaryNamesShapeScalingAndValues() throws {
        let summary = try VolumeInfo.read("\(testDataFolder)/functional.nii").summary
        XCTAssertTrue(summary.contains("17 × 21 × 3 × 20"), summary)
        XCTAssertTrue(summary.contains("scaling"), summary)
        XCTAssertTrue(summary.contains("min 629.826"), summary)
    }

    private func checkAgainstExpectation(_ path: String, expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let got = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(VolumeInfo.read(path).json.utf8)) as? [String: Any])
        let want = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: expected))) as? [String: Any])
        let name = (path as NSString).lastPathComponent
        for key in ["format", "datatype"] {
            XCTAssertEqual(got[key] as? String, want[key] as? String, "\(name) \(key)", file: file, line: line)
        }
        for key in ["qform_code", "sform_code"] {
            XCTAssertEqual(got[key] as? Int, want[key] as? Int, "\(name) \(key)", file: file, line: line)
        }
        XCTAssertEqual(got["dim"] as? [Int], want["dim"] as? [Int], "\(name) dim", file: file, line: line)
        let gotPixdim = try XCTUnwrap(got["pixdim"] as? [Double]), wantPixdim = try XCTUnwrap(want["pixdim"] as? [Double])
        XCTAssertEqual(gotPixdim.count, wantPixdim.count, "\(name) pixdim count", file: file, line: line)
        for (g, w) in zip(gotPixdim, wantPixdim) { assertClose(g, w, absolute: 1e-5, "\(name) pixdim", file: file, line: line) }
        let gotAffine = try XCTUnwrap(got["affine"] as? [[Double]]), wantAffine = try XCTUnwrap(want["affine"] as? [[Double]])
        for (gr, wr) in zip(gotAffine, wantAffine) {
            for (g, w) in zip(gr, wr) { assertClose(g, w, absolute: 1e-5, "\(name) affine", file: file, line: line) }
        }
        for key in ["scl_slope", "scl_inter"] {
            assertClose(try XCTUnwrap(got[key] as? Double), try XCTUnwrap(want[key] as? Double), absolute: 1e-9, relative: 1e-7,
                        "\(name) \(key)", file: file, line: line)
        }
        let gotStats = try XCTUnwrap(got["stats"] as? [String: Double]), wantStats = try XCTUnwrap(want["stats"] as? [String: Double])
        for key in ["min", "max", "mean", "sum"] {
            assertClose(try XCTUnwrap(gotStats[key]), try XCTUnwrap(wantStats[key]), relative: 1e-6, "\(name) stats.\(key)",
                        file: file, line: line)
        }
    }
}
