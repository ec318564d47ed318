import Foundation

/// A line chart as inline SVG markup for `report.html`: framed axes with round ticks and their
/// labels, an axis title on each, one polyline per series (a dot per point, so a series of one
/// point shows) and a legend to the right of the plot. Non-finite values (an epoch without
/// validation, an infinite distance) are left out of their series.
public struct SVGLineChart: Sendable {
    /// One curve: its legend name and its points (x, y) in data units.
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]

        public init(name: String, points: [(x: Double, y: Double)]) {
            self.name = name
            self.points = points
        }

        /// The points that are drawn: both coordinates finite.
        public var finitePoints: [(x: Double, y: Double)] { points.filter { $0.x.isFinite && $0.y.isFinite } }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// Size of the whole picture in CSS pixels.
    public var width = 520
    public var height = 300

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    /// Stroke colours in series order (matplotlib's "tab10"; the first series, usually the total
    /// or the mean, in black).
    static let colors = ["#000000", "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]

    /// The `<svg>` element.
    public var svg: String {
        let e = HTMLDocument.escape
        let legendWidth = 150
        let left = 62.0, right = Double(width - legendWidth - 12), top = 30.0, bottom = Double(height - 44)
        var out = "<svg class=\"chart\" width=\"\(width)\" height=\"\(height)\" "
            + "viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(e(title))\" "
            + "font-family=\"system-ui,Helvetica,Arial,sans-serif\" font-size=\"11\">\n"
        out += "<text x=\"\(f(left))\" y=\"18\" font-size=\"13\" font-weight=\"bold\">\(e(title))</text>\n"
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(right - left))\" height=\"\(f(bottom - top))\" fill=\"none\" stroke=\"#333\"/>\n"
        out += "<text x=\"\(f((left + right) / 2))\" y=\"\(height - 8)\" text-anchor=\"middle\">\(e(xLabel))</text>\n"
        out += "<text transform=\"translate(14 \(f((top + bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(e(yLabel))</text>\n"
        let all = series.flatMap(\.finitePoints)
        guard let range = Self.range(all) else {
            out += "<text x=\"\(f((left + right) / 2))\" y=\"\(f((top + bottom) / 2))\" text-anchor=\"middle\" fill=\"#888\">no data yet</text>\n"
            return out + "</svg>"
        }
        let (x0, x1, y0, y1) = range
        func px(_ v: Double) -> Double { left + (v - x0) / (x1 - x0) * (right - left) }
        func py(_ v: Double) -> Double { bottom - (v - y0) / (y1 - y0) * (bottom - top) }
        for t in Plots.ticks(y0, y1) {
            let y = py(t)
            out += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(right))\" y2=\"\(f(y))\" stroke=\"#e4e4e4\"/>"
            out += "<line x1=\"\(f(left - 4))\" y1=\"\(f(y))\" x2=\"\(f(left))\" y2=\"\(f(y))\" stroke=\"#333\"/>"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(e(Plots.tickLabel(t)))</text>\n"
        }
        // Epochs are whole numbers: fractional x ticks would repeat a label.
        let integral = all.allSatisfy { $0.x == $0.x.rounded() }
        for t in Plots.ticks(x0, x1) where !integral || t == t.rounded() {
            let x = px(t)
            out += "<line x1=\"\(f(x))\" y1=\"\(f(bottom))\" x2=\"\(f(x))\" y2=\"\(f(bottom + 4))\" stroke=\"#333\"/>"
            out += "<text x=\"\(f(x))\" y=\"\(f(bottom + 16))\" text-anchor=\"middle\">\(e(Plots.tickLabel(t)))</text>\n"
        }
        for (i, s) in series.enumerated() {
            let color = Self.colors[i % Self.colors.count]
            let points = s.finitePoints
            out += "<g class=\"series\" data-name=\"\(e(s.name))\" data-points=\"\(points.count)\">"
            if points.count > 1 {
                let coordinates = points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
                out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.8\" points=\"\(coordinates)\"/>"
            }
            for p in points {
                out += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"2.2\" fill=\"\(color)\"/>"
            }
            out += "</g>\n"
            // Legend entry.
            let ly = top + 8 + Double(i) * 16
            out += "<line x1=\"\(f(right + 12))\" y1=\"\(f(ly))\" x2=\"\(f(right + 30))\" y2=\"\(f(ly))\" stroke=\"\(color)\" stroke-width=\"2.5\"/>"
            out += "<text x=\"\(f(right + 35))\" y=\"\(f(ly + 4))\">\(e(s.name))</text>\n"
        }
        return out + "</svg>"
    }

    /// Data bounds with a margin on y; a single value is widened so the axis has a span.
    static func range(_ points: [(x: Double, y: Double)]) -> (Double, Double, Double, Double)? {
        guard var x0 = points.map(\.x).min(), var x1 = points.map(\.x).max(),
              var y0 = points.map(\.y).min(), var y1 = points.map(\.y).max()
        else { return nil }
        if x1 - x0 < 1e-12 { x0 -= 1; x1 += 1 }
        if y1 - y0 < 1e-12 * max(1, abs(y0)) { y0 -= max(0.5, abs(y0) * 0.1); y1 += max(0.5, abs(y1) * 0.1) }
        let pad = (y1 - y0) * 0.05
        return (x0, x1, y0 - pad, y1 + pad)
    }

    /// A coordinate with two decimals (enough for screen pixels, short in the file).
    private func f(_ v: Double) -> String { String(format: "%.2f", v) }
}
