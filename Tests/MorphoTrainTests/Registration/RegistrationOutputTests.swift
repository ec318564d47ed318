import Foundation
import MorphoTensor
import XCTest
@testable import MorphoTrain

/// `RegistrationOutput`: every file `register` writes is listed with the convention it is written in.
final class RegistrationOutputTests: XCTestCase {
    func testTheListNamesEveryFileInWriteOrder() {
        let all = RegistrationOutput.list(warped: "w.nii.gz", labels: "l.nii.gz", field: "f.nii.gz", fieldUnits: .mm, jacobian: "j.nii.gz")
        XCTAssertEqual(all.map(\.kind), ["warped_image", "warped_labels", "displacement_field", "jacobian"])
        XCTAssertEqual(all.map(\.path), ["w.nii.gz", "l.nii.gz", "f.nii.gz", "j.nii.gz"])
        let warpedOnly = RegistrationOutput.list(warped: "w.nii.gz", labels: nil, field: nil, fieldUnits: .mm, jacobian: nil)
        XCTAssertEqual(warpedOnly.map(\.kind), ["warped_image"])
    }

    func testTheFieldConventionFollowsItsUnits() {
        let mm = RegistrationOutput.field("f.nii.gz", units: .mm).convention
        XCTAssertTrue(mm.contains("LPS millimetres") && mm.contains("intent vector (1007)") && mm.contains("fixed point to its moving point"), mm)
        let voxels = RegistrationOutput.field("f.nii.gz", units: .voxels).convention
        XCTAssertTrue(voxels.contains("in voxels of the fixed grid") && voxels.contains("MorphoSeg voxel"), voxels)
        XCTAssertFalse(voxels.contains("LPS"))
    }

    func testTheSummaryJSONCarriesTheOutputs() throws {
        let outputs = RegistrationOutput.list(warped: "w.nii.gz", labels: nil, field: "f.nii.gz", fieldUnits: .voxels, jacobian: nil)
        let identity = RegistrationMetrics.jacobianStatistics(Tensor(shape: [4], data: [1, 1, 1, 1]))
        let figures = SimilarityFigures(lcc: 1, lccWindow: 9, gcc: 1, mse: 0)
        let quality = RegistrationQuality(
            jacobian: identity, similarityBefore: figures, similarityAfter: figures, diceBefore: nil, diceAfter: nil,
            meanDiceBefore: nil, meanDiceAfter: nil)
        let summary = RegistrationSummary(
            files: RegistrationPairFiles(fixed: "f", moving: "m"), outputs: outputs, quality: quality,
            seconds: 1, cpuSeconds: 2, threads: 2)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try summary.json().utf8)) as? [String: Any])
        let listed = try XCTUnwrap(object["outputs"] as? [[String: String]])
        XCTAssertEqual(listed.map { $0["kind"] }, ["warped_image", "displacement_field"])
        XCTAssertEqual(listed[1]["convention"], outputs[1].convention)
        XCTAssertEqual(listed[1]["path"], "f.nii.gz")
    }
}
