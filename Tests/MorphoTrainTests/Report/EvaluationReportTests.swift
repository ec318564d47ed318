import Foundation
import MorphoIO
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

/// A folder evaluation's `report.html`: one table row per case, the summary per label, the worst
/// case drawn, case names from file names escaped; and `morphoseg evaluate` writing it.
final class EvaluationReportTests: XCTestCase {
    var dir = ""
    /// A case name a file may carry and a page must not run.
    let hostile = "<script>alert('x')"

    override func setUpWithError() throws {
        dir = try temporaryFolder("evaluation-report")
        for folder in ["pred", "ref"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(folder)", withIntermediateDirectories: true)
        }
        // Three 3×8×8 cases: label 1 a 4×4 square, label 2 a 2×2 square; the prediction's label-1
        // square is `width` columns wide.
        for (name, width) in [("a", 4), ("b", 2), (hostile, 3)] {
            for (folder, w) in [("pred", width), ("ref", 4)] {
                var data = [Float](repeating: 0, count: 3 * 64)
                for z in 0..<3 {
                    for y in 2..<6 { for x in 1..<(1 + w) { data[z * 64 + y * 8 + x] = 1 } }
                    for y in 5..<7 { for x in 6..<8 { data[z * 64 + y * 8 + x] = 2 } }
                }
                try NIfTI.write(Volume(depth: 3, height: 8, width: 8, data: data), to: "\(dir)/\(folder)/\(name).nii.gz", datatype: .uint8)
            }
        }
    }

    func testTheTableHasOneRowPerCaseAndTheSummaryOnePerLabel() throws {
        let e = try FolderEvaluation.folders(prediction: dir + "/pred", reference: dir + "/ref")
        let report = EvaluationReport(e)
        let html = report.document.html
        ReportChecks.assertSelfContainedAndWellFormed(html)
        let rows = try XCTUnwrap(ReportChecks.bodyRows(html, caption: "one row per case"))
        XCTAssertEqual(rows.count, 3)
        XCTAssertEqual(e.cases.map(\.name), [hostile, "a", "b"])
        XCTAssertTrue(rows[0].contains("<td>&lt;script&gt;alert(&#39;x&#39;)</td>"), rows[0])
        XCTAssertFalse(html.contains("<script"))
        // Case b: label 1 predicted 2 of 4 columns, Dice 2·8/(8+16) per slice = 0.6667; label 2 exact.
        XCTAssertTrue(rows[2].contains("<td class=\"num\">0.6667</td>"), rows[2])
        XCTAssertEqual(try XCTUnwrap(ReportChecks.bodyRows(html, caption: "mean ± sample")).count, 2)
        let s = e.summary(label: 1).dice
        XCTAssertTrue(html.contains(String(format: "<td class=\"num\">%.4f ± %.4f</td>", s.mean, s.std)))
        // The worst case (b) is drawn.
        XCTAssertEqual(report.worstCase, 2)
        XCTAssertNotNil(report.overlay)
        XCTAssertTrue(html.contains("Case b, middle slice"))
        XCTAssertEqual(ReportChecks.count("<img src=\"data:image/png;base64,", in: html), 1)
    }

    func testEvaluateWritesTheReportBesideTheCSVOrWhereAsked() throws {
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        let ok = try MorphosegProcess.run([
            "evaluate", "--prediction", dir + "/pred", "--reference", dir + "/ref", "--csv", dir + "/out/metrics.csv",
        ])
        XCTAssertEqual(ok.status, 0, ok.errors)
        let html = try String(contentsOfFile: dir + "/out/report.html", encoding: .utf8)
        ReportChecks.assertSelfContainedAndWellFormed(html)
        XCTAssertEqual(ReportChecks.bodyRows(html, caption: "one row per case")?.count, 3)

        let asked = try MorphosegProcess.run([
            "evaluate", "--prediction", dir + "/pred", "--reference", dir + "/ref", "--json", "--report", dir + "/eval.html",
        ])
        XCTAssertEqual(asked.status, 0, asked.errors)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/eval.html"))

        let onInput = try MorphosegProcess.run(["evaluate", "--prediction", dir + "/pred", "--reference", dir + "/ref", "--report", dir + "/ref"])
        XCTAssertNotEqual(onInput.status, 0)
        XCTAssertTrue(onInput.errors.contains("--report"), onInput.errors)
        let files = try MorphosegProcess.run([
            "evaluate", "--prediction", dir + "/pred/a.nii.gz", "--reference", dir + "/ref/a.nii.gz", "--report", dir + "/x.html",
        ])
        XCTAssertNotEqual(files.status, 0)
        XCTAssertTrue(files.errors.contains("--report need folders"), files.errors)
    }
}
