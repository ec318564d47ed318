import Foundation
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

/// A training run's `report.html`: the curves of `metrics.jsonl` (one point per epoch for the
/// loss, one per validation for each metric), the overlay, the epoch table and the resolved
/// config, written by every kind of run and refreshed as the run goes.
final class RunReportTests: XCTestCase, TinySegmentationRun, TinyJointRun {
    var dir = ""

    override func setUpWithError() throws {
        dir = try temporaryFolder("run-report")
    }

    func record(_ epoch: Int, validated: Bool) -> EpochRecord {
        let e = Double(epoch)
        return EpochRecord(
            epoch: epoch, learningRate: 1e-3, loss: 1 / e, terms: [("dice", 0.5 / e), ("ce", 0.4 / e)], weights: [("dice", 1), ("ce", 1)],
            validation: validated
                ? [("dice_mean", 0.5 + e / 20), ("dice.1", 0.4 + e / 20), ("hd95.1", epoch == 2 ? .infinity : 10 / e), ("msd.1", 3 / e),
                   ("folding_percent", 0.1 * e)]
                : [],
            seconds: 1.5)
    }

    func testCurvesHaveOnePointPerEpochOrValidationAndMetricsAreGroupedByScale() throws {
        let history = (1...5).map { record($0, validated: [2, 4, 5].contains($0)) }
        let report = RunReport(
            title: "run <tiny>", kind: "segmentation", history: history, plannedEpochs: 8, scoreName: "dice_mean",
            resolvedConfig: "name: <script>alert(1)</script>\nmodel: {kind: segmentation}\n", overlay: nil)
        XCTAssertEqual(report.charts.map(\.title), ["training loss", "validation: overlap", "validation: surface distance", "validation: folding_percent"])
        let html = report.document.html
        ReportChecks.assertSelfContainedAndWellFormed(html)
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "loss (weighted total)"), [5])
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "dice"), [5])
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "ce"), [5])
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "dice_mean"), [3])
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "dice.1"), [3])
        // Epoch 2's HD95 is infinite (class missing): left out of the curve, ∞ in the table.
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "hd95.1"), [2])
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "folding_percent"), [3])
        XCTAssertEqual(ReportChecks.bodyRows(html, caption: "one row per completed epoch")?.count, 5)
        XCTAssertEqual(ReportChecks.bodyRows(html, caption: "epoch 5;")?.count, 5)
        XCTAssertTrue(html.contains("best dice_mean 0.75 at epoch 5"))
        XCTAssertTrue(html.contains("<pre>name: &lt;script&gt;alert(1)&lt;/script&gt;\nmodel: {kind: segmentation}\n</pre>"))
        XCTAssertTrue(html.contains("<h1>run &lt;tiny&gt;</h1>"))
        XCTAssertTrue(html.contains("No overlay yet"))
    }

    /// The trainer refreshes the report after every validation: for a 500-epoch run it must stay
    /// far below an epoch's time (measured: see the print; the bound is loose for loaded machines).
    func testRefreshingTheReportOfALongRunIsCheap() throws {
        let config = try phantomConfig(epochs: 500)
        let log = (1...500).map { record($0, validated: $0 % 2 == 0).json + "\n" }.joined()
        try log.write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
        try config.yaml.write(toFile: dir + "/config.yaml", atomically: true, encoding: .utf8)
        try Canvas(width: 520, height: 276).write(to: dir + "/overlay.png")
        let history = (1...500).map { record($0, validated: $0 % 2 == 0) }
        for given in [nil, history] {
            var times: [Double] = []
            for _ in 0..<5 {
                let start = Date()
                try RunReport.refresh(runFolder: dir, config: config, scoreName: "dice_mean", history: given)
                times.append(Date().timeIntervalSince(start))
            }
            let median = times.sorted()[2]
            let source = given == nil ? "parsing metrics.jsonl" : "history in memory (the trainer's case)"
            print("report.html refresh, 500 epochs, \(source): median \(String(format: "%.1f", median * 1000)) ms of 5")
            XCTAssertLessThan(median, 2)
        }
        let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        ReportChecks.assertSelfContainedAndWellFormed(html)
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "loss (weighted total)"), [500])
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "dice_mean"), [250])
    }

    func testASegmentationRunWritesItsReportAndRefreshesItWhenResumed() throws {
        let config = try phantomConfig(epochs: 3, steps: 3)
        _ = try TrainingRun.run(.segmentation(config), output: dir, stopAfterEpoch: 1, progress: quiet())
        var html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        ReportChecks.assertSelfContainedAndWellFormed(html)
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "loss (weighted total)"), [1])
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "dice_mean"), [1])

        _ = try TrainingRun.run(.segmentation(config), output: dir, resume: dir + "/last.safetensors", progress: quiet())
        html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        ReportChecks.assertSelfContainedAndWellFormed(html)
        let lines = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "loss (weighted total)"), [3])
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "dice_mean"), [3])
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "hd95.1").count, 1)
        XCTAssertEqual(ReportChecks.bodyRows(html, caption: "one row per completed epoch")?.count, 3)
        let overlay = try XCTUnwrap(FileManager.default.contents(atPath: dir + "/overlay.png"))
        XCTAssertTrue(html.contains("src=\"data:image/png;base64,\(overlay.base64EncodedString())\""))
        XCTAssertTrue(html.contains("<pre>\(HTMLDocument.escape(config.yaml))</pre>"))
        XCTAssertTrue(html.contains("<h1>MorphoSeg run tiny</h1>"))
    }

    /// One table row per held-out case, each case's metrics as validation computed them: their
    /// mean over the cases is the logged validation mean.
    func testASegmentationRunReportsItsLatestValidationPerCase() throws {
        let config = try phantomConfig(epochs: 2, steps: 2)
        _ = try TrainingRun.run(.segmentation(config), output: dir, progress: quiet())
        let cases = try XCTUnwrap(ValidationCases.load(runFolder: dir))
        XCTAssertEqual(cases.epoch, 2)
        XCTAssertGreaterThanOrEqual(cases.cases.count, 2, "the phantom run holds out several subjects")
        XCTAssertEqual(Set(cases.cases.map(\.name)).count, cases.cases.count)
        XCTAssertEqual(Array(cases.metrics.prefix(2)), ["dice_mean", "dice.1"])
        let last = try XCTUnwrap(String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").last
            .flatMap { EpochRecord(json: String($0)) })
        for (j, name) in cases.metrics.enumerated() where name.hasPrefix("dice") {
            let mean = cases.cases.map { $0.values[j] }.reduce(0, +) / Double(cases.cases.count)
            XCTAssertEqual(mean, try XCTUnwrap(last.metric(name)), accuracy: 1e-12, name)
        }
        let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        ReportChecks.assertSelfContainedAndWellFormed(html)
        let rows = try XCTUnwrap(ReportChecks.bodyRows(html, caption: "validation at epoch 2, one row per held-out case"))
        XCTAssertEqual(rows.count, cases.cases.count)
        for c in cases.cases { XCTAssertTrue(html.contains("<td>\(HTMLDocument.escape(c.name))</td>"), c.name) }
        XCTAssertEqual(ValidationCases(json: cases.json), cases)
    }

    func testARunWithoutPlotsStillShowsTheOverlay() throws {
        let config = try phantomConfig(epochs: 1, steps: 2, extra: "output: {plots: false}")
        _ = try TrainingRun.run(.segmentation(config), output: dir, progress: quiet())
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/overlay.png"))
        let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        ReportChecks.assertSelfContainedAndWellFormed(html)
        XCTAssertEqual(ReportChecks.count("<img src=\"data:image/png;base64,", in: html), 1)
    }

    func testRegistrationAndJointRunsReportTheirWholeResolvedConfig() throws {
        let registration = try RegistrationRunConfig(yaml: TinyConfigs.registration(
            epochs: 2, steps: 2, threads: 2, optimizer: "{kind: adam, lr: 0.003}", validateEvery: 1))
        _ = try TrainingRun.run(.registration(registration), output: dir + "/reg", progress: quiet())
        var html = try String(contentsOfFile: dir + "/reg/report.html", encoding: .utf8)
        ReportChecks.assertSelfContainedAndWellFormed(html)
        XCTAssertTrue(html.contains("<pre>\(HTMLDocument.escape(TaskConfig.registration(registration).yaml))</pre>"))
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "folding_percent"), [2])
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "similarity"), [2])
        XCTAssertTrue(html.contains("data:image/png;base64,"))

        let joint = try config(epochs: 1, steps: 2)
        _ = try TrainingRun.run(.joint(joint), output: dir + "/joint", progress: quiet())
        html = try String(contentsOfFile: dir + "/joint/report.html", encoding: .utf8)
        ReportChecks.assertSelfContainedAndWellFormed(html)
        XCTAssertTrue(html.contains("<pre>\(HTMLDocument.escape(TaskConfig.joint(joint).yaml))</pre>"))
        XCTAssertEqual(ReportChecks.seriesPointCounts(html, name: "seg_dice_mean"), [1])
    }
}
