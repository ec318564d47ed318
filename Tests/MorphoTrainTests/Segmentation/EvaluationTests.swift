import Foundation
import MorphoIO
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// Evaluating label maps against references.
final class EvaluationTests: XCTestCase {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("trainer")
    }

    func testEvaluationRefusesMismatchedGrids() throws {
        let a = Volume(depth: 2, height: 4, width: 4, data: [Float](repeating: 1, count: 32))
        let b = Volume(depth: 2, height: 4, width: 5, data: [Float](repeating: 1, count: 40))
        try NIfTI.write(a, to: tempDir + "/a.nii", datatype: .uint8)
        try NIfTI.write(b, to: tempDir + "/b.nii", datatype: .uint8)
        XCTAssertThrowsError(try Evaluation.files(prediction: tempDir + "/a.nii", reference: tempDir + "/b.nii")) { error in
            XCTAssertEqual("\(error)", "\(tempDir)/a.nii and \(tempDir)/b.nii are not on the same voxel grid: sizes (x, y, z) [4, 4, 2] vs [5, 4, 2]")
        }
    }

    func testEvaluationJSONHasNullForInfiniteDistances() throws {
        var p = [Float](repeating: 0, count: 32), r = p
        p[3] = 1
        r[3] = 1
        r[20] = 2
        try NIfTI.write(Volume(depth: 2, height: 4, width: 4, data: p), to: tempDir + "/p.nii", datatype: .uint8)
        try NIfTI.write(Volume(depth: 2, height: 4, width: 4, data: r), to: tempDir + "/r.nii", datatype: .uint8)
        let e = try Evaluation.files(prediction: tempDir + "/p.nii", reference: tempDir + "/r.nii")
        let object = try JSONSerialization.jsonObject(with: Data(e.json.utf8)) as! [String: Any]
        let labels = object["labels"] as! [[String: Any]]
        XCTAssertEqual(labels.count, 2)
        XCTAssertEqual(labels[0]["dice"] as? Double, 1)
        XCTAssertTrue(labels[1]["hd95"] is NSNull)
        XCTAssertEqual(object["mean_dice"] as? Double, 0.5)
    }
}
