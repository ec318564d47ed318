import Foundation
import MorphoIO
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// Folder evaluation: cases paired by name, per-case rows from `Evaluation.files`, and the
/// summary's mean and sample standard deviation.
final class FolderEvaluationTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = try temporaryFolder("folder-eval")
        for folder in ["pred", "ref"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(folder)", withIntermediateDirectories: true)
        }
    }

    /// A 1×4×8 label map: label 1 in columns 0..<width of row 1, label 2 at (2, 6) when `two`.
    func write(_ path: String, width: Int, two: Bool = true) throws {
        var data = [Float](repeating: 0, count: 32)
        for x in 0..<width { data[8 + x] = 1 }
        if two { data[2 * 8 + 6] = 2 }
        try NIfTI.write(Volume(depth: 1, height: 4, width: 8, data: data), to: path, datatype: .uint8)
    }

    func testCasesArePairedByNameAndSummarised() throws {
        // Case a: perfect. Case b: label 1 is 2 voxels where the reference has 4 (Dice 2·2/6).
        try write("\(dir)/pred/a.nii.gz", width: 4)
        try write("\(dir)/ref/a.nii", width: 4)
        try write("\(dir)/pred/b.nii.gz", width: 2)
        try write("\(dir)/ref/b.nii.gz", width: 4)
        let e = try FolderEvaluation.folders(prediction: "\(dir)/pred", reference: "\(dir)/ref")
        XCTAssertEqual(e.cases.map(\.name), ["a", "b"])
        XCTAssertEqual(e.labels, [1, 2])
        let single = try Evaluation.files(prediction: "\(dir)/pred/b.nii.gz", reference: "\(dir)/ref/b.nii.gz", labels: [1, 2])
        XCTAssertEqual(e.cases[1].evaluation.labels, single.labels)
        let s = e.summary(label: 1)
        let diceB = 2.0 * 2 / 6
        XCTAssertEqual(s.dice.mean, (1 + diceB) / 2, accuracy: 1e-12)
        XCTAssertEqual(s.dice.std, abs(1 - diceB) / 2.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(s.dice.count, 2)
        XCTAssertEqual(e.summary(label: 2).dice.mean, 1)
        XCTAssertEqual(e.summary(label: 2).dice.std, 0)

        let csv = e.csv.split(separator: "\n")
        XCTAssertEqual(csv[0], "case,label,dice,hd95,assd,predicted_voxels,reference_voxels")
        XCTAssertEqual(csv.count, 1 + 4 + 4)
        XCTAssertTrue(csv[3].hasPrefix("b,1,\(diceB),"))
        XCTAssertTrue(csv[5].hasPrefix("mean,1,\((1 + diceB) / 2),"))

        let json = try JSONSerialization.jsonObject(with: Data(e.json.utf8)) as! [String: Any]
        let summary = json["summary"] as! [[String: Any]]
        XCTAssertEqual(((summary[0]["dice"] as! [String: Any])["mean"] as! Double), (1 + diceB) / 2, accuracy: 1e-12)
        XCTAssertEqual((json["cases"] as! [[String: Any]]).count, 2)
        XCTAssertTrue(e.table.contains("summary over 2 cases"))
    }

    func testAbsentLabelGivesInfiniteDistancesThatTheSummarySkips() throws {
        try write("\(dir)/pred/a.nii.gz", width: 4, two: false)
        try write("\(dir)/ref/a.nii.gz", width: 4)
        try write("\(dir)/pred/b.nii.gz", width: 4)
        try write("\(dir)/ref/b.nii.gz", width: 4)
        let s = try FolderEvaluation.folders(prediction: "\(dir)/pred", reference: "\(dir)/ref").summary(label: 2)
        XCTAssertEqual(s.hd95.count, 1)
        XCTAssertEqual(s.hd95.mean, 0)
        XCTAssertEqual(s.dice.mean, 0.5)
    }

    func testUnpairedFilesAreNamed() throws {
        try write("\(dir)/pred/a.nii.gz", width: 4)
        try write("\(dir)/ref/a.nii.gz", width: 4)
        try write("\(dir)/ref/b.nii.gz", width: 4)
        XCTAssertThrowsError(try FolderEvaluation.folders(prediction: "\(dir)/pred", reference: "\(dir)/ref")) {
            XCTAssertEqual("\($0)", "\(dir)/ref/b.nii.gz: no prediction b.nii(.gz) in \(dir)/pred")
        }
        try write("\(dir)/pred/c.nii.gz", width: 4)
        XCTAssertThrowsError(try FolderEvaluation.folders(prediction: "\(dir)/pred", reference: "\(dir)/ref")) {
            XCTAssertEqual("\($0)", "\(dir)/pred/c.nii.gz: no reference c.nii(.gz) in \(dir)/ref")
        }
    }
}
