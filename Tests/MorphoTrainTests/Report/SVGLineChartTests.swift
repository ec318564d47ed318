import Foundation
import XCTest
@testable import MorphoTrain

/// Learning-curve charts: one drawn point per finite value, axes with ticks and titles, a legend.
final class SVGLineChartTests: XCTestCase {
    func chart() -> SVGLineChart {
        SVGLineChart(
            title: "validation <overlap>", xLabel: "epoch", yLabel: "Dice",
            series: [
                .init(name: "dice_mean", points: (1...10).map { (Double($0), Double($0) / 10) }),
                .init(name: "dice.1", points: [(1, 0.2), (2, .nan), (3, 0.5), (4, .infinity), (5, 0.9)]),
                .init(name: "one", points: [(7, 0.3)]),
            ])
    }

    func testEachSeriesHasOnePointPerFiniteValue() {
        let svg = chart().svg
        XCTAssertEqual(ReportChecks.seriesPointCounts(svg, name: "dice_mean"), [10])
        XCTAssertEqual(ReportChecks.seriesPointCounts(svg, name: "dice.1"), [3])
        XCTAssertEqual(ReportChecks.seriesPointCounts(svg, name: "one"), [1])
        XCTAssertEqual(ReportChecks.seriesCircles(svg, name: "dice_mean"), 10)
        XCTAssertEqual(ReportChecks.seriesCircles(svg, name: "dice.1"), 3)
        XCTAssertEqual(ReportChecks.seriesCircles(svg, name: "one"), 1)
        // One polyline per series of two points or more.
        XCTAssertEqual(ReportChecks.count("<polyline", in: svg), 2)
        let polyline = svg.components(separatedBy: " points=\"")[1].prefix(while: { $0 != "\"" })
        XCTAssertEqual(polyline.split(separator: " ").count, 10)
    }

    func testAxesHaveTicksTitlesAndALegend() {
        let svg = chart().svg
        // y from 0.1 to 1.0 (padded by 5 %): ticks every 0.2; x from 1 to 10: ticks every 2.
        for label in ["0.2", "0.4", "0.6", "0.8", "1"] { XCTAssertTrue(svg.contains(">\(label)</text>"), "y tick \(label)") }
        for label in ["2", "4", "6", "8", "10"] { XCTAssertTrue(svg.contains("text-anchor=\"middle\">\(label)</text>"), "x tick \(label)") }
        XCTAssertTrue(svg.contains(">epoch</text>"))
        XCTAssertTrue(svg.contains("rotate(-90)\" text-anchor=\"middle\">Dice</text>"))
        XCTAssertTrue(svg.contains(">validation &lt;overlap&gt;</text>"))
        for name in ["dice_mean", "dice.1", "one"] { XCTAssertTrue(svg.contains(">\(name)</text>"), "legend \(name)") }
        XCTAssertNil(ReportChecks.unbalancedTags(svg))
    }

    func testPointsStayInsideThePlotFrame() {
        let c = chart()
        let svg = c.svg
        let xs = svg.components(separatedBy: "cx=\"").dropFirst().compactMap { Double($0.prefix(while: { $0 != "\"" })) }
        let ys = svg.components(separatedBy: "cy=\"").dropFirst().compactMap { Double($0.prefix(while: { $0 != "\"" })) }
        XCTAssertEqual(xs.count, 14)
        XCTAssertEqual(xs.min(), 62)
        XCTAssertEqual(xs.max(), Double(c.width - 150 - 12))
        XCTAssertTrue(ys.allSatisfy { $0 > 30 && $0 < Double(c.height - 44) }, "\(ys)")
    }

    func testAChartWithoutDataSaysSo() {
        let svg = SVGLineChart(title: "t", xLabel: "epoch", yLabel: "loss", series: [.init(name: "loss", points: [(1, .nan)])]).svg
        XCTAssertTrue(svg.contains("no data yet"))
        XCTAssertNil(ReportChecks.unbalancedTags(svg))
    }
}
