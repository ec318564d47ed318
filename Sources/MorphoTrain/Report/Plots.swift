import Foundation

/// The pictures a run writes: learning curves (`curves.png`) and a mid-slice overlay
/// (`overlay.png`).
public enum Plots {
    /// One curve of a line plot.
    public struct Series {
        public var name: String
        public var color: Canvas.Color
        public var points: [(x: Double, y: Double)]

        public init(name: String, color: Canvas.Color, points: [(x: Double, y: Double)]) {
            self.name = name
            self.color = color
            self.points = points
        }
    }

    static let palette: [Canvas.Color] = [
        (31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75), (227, 119, 194),
    ]

    /// Training loss terms (top) and validation scores (bottom) against the epoch.
    public static func learningCurves(_ history: [EpochRecord], validationMetrics: [String]? = nil) -> Canvas {
        var canvas = Canvas(width: 720, height: 640)
        var lossSeries = [Series(name: "loss", color: (0, 0, 0), points: history.map { (Double($0.epoch), $0.loss) })]
        let termNames = history.last?.terms.map(\.name) ?? []
        for (i, name) in termNames.enumerated() {
            let points = history.compactMap { r in r.terms.first { $0.name == name }.map { (Double(r.epoch), $0.value) } }
            lossSeries.append(Series(name: name, color: palette[i % palette.count], points: points))
        }
        panel(&canvas, x: 0, y: 0, width: 720, height: 320, title: "training loss", series: lossSeries)
        let names = validationMetrics ?? (history.last { !$0.validation.isEmpty }?.validation.map(\.name).filter {
            $0.hasPrefix("dice") } ?? [])
        let valSeries = names.enumerated().map { i, name in
            Series(
                name: name, color: name == "dice_mean" ? (0, 0, 0) : palette[i % palette.count],
                points: history.compactMap { r in r.metric(name).flatMap { $0.isFinite ? (Double(r.epoch), $0) : nil } })
        }
        panel(&canvas, x: 0, y: 320, width: 720, height: 320, title: "validation", series: valSeries)
        return canvas
    }

    /// A line plot with axes, tick labels, a title and a legend inside the frame.
    public static func panel(
        _ c: inout Canvas, x: Int, y: Int, width: Int, height: Int, title: String, series: [Series]
    ) {
        let left = x + 64, right = x + width - 16, top = y + 28, bottom = y + height - 36
        c.text(title, x: left, y: y + 8, (0, 0, 0), scale: 2)
        let all = series.flatMap(\.points).filter { $0.y.isFinite }
        c.line(left, bottom, right, bottom, (0, 0, 0))
        c.line(left, top, left, bottom, (0, 0, 0))
        guard !all.isEmpty else {
            c.text("no data yet", x: left + 16, y: (top + bottom) / 2, (120, 120, 120))
            return
        }
        var x0 = all.map(\.x).min()!, x1 = all.map(\.x).max()!
        var y0 = all.map(\.y).min()!, y1 = all.map(\.y).max()!
        if x1 - x0 < 1e-12 { x0 -= 1; x1 += 1 }
        if y1 - y0 < 1e-12 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad
        y1 += pad
        func px(_ v: Double) -> Int { left + Int(((v - x0) / (x1 - x0) * Double(right - left)).rounded()) }
        func py(_ v: Double) -> Int { bottom - Int(((v - y0) / (y1 - y0) * Double(bottom - top)).rounded()) }
        for t in ticks(y0, y1) {
            let yy = py(t)
            c.line(left - 4, yy, left, yy, (0, 0, 0))
            for xx in stride(from: left + 1, to: right, by: 4) { c.set(xx, yy, (220, 220, 220)) }
            let label = tickLabel(t)
            c.text(label, x: left - 8 - Canvas.textWidth(label), y: yy - 3, (0, 0, 0))
        }
        for t in ticks(x0, x1) where t == t.rounded() {
            let xx = px(t)
            c.line(xx, bottom, xx, bottom + 4, (0, 0, 0))
            let label = tickLabel(t)
            c.text(label, x: xx - Canvas.textWidth(label) / 2, y: bottom + 8, (0, 0, 0))
        }
        c.text("epoch", x: right - Canvas.textWidth("epoch"), y: bottom + 20, (0, 0, 0))
        for s in series {
            let pts = s.points.filter { $0.y.isFinite }
            if pts.count == 1 {
                c.fill(x: px(pts[0].x) - 2, y: py(pts[0].y) - 2, width: 5, height: 5, s.color)
            }
            for (a, b) in zip(pts, pts.dropFirst()) {
                c.line(px(a.x), py(a.y), px(b.x), py(b.y), s.color, thickness: 2)
            }
        }
        // Legend, top right.
        var ly = top + 6
        for s in series {
            let w = Canvas.textWidth(s.name)
            c.fill(x: right - w - 22, y: ly + 1, width: 12, height: 5, s.color)
            c.text(s.name, x: right - w - 6, y: ly, (0, 0, 0))
            ly += 11
        }
    }

    /// About five round tick values covering `[a, b]`.
    static func ticks(_ a: Double, _ b: Double) -> [Double] {
        let span = b - a
        let raw = span / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var out: [Double] = []
        var t = ceil(a / step) * step
        while t <= b + 1e-9 * step {
            out.append(abs(t) < 1e-12 * step ? 0 : t)
            t += step
        }
        return out
    }

    static func tickLabel(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
        let a = abs(v)
        if a >= 0.01 && a < 1e4 {
            var s = String(format: "%.3f", v)
            while s.hasSuffix("0") { s.removeLast() }
            return s
        }
        return String(format: "%.1e", v)
    }

    /// Class colours of overlays (class 1, 2, …).
    static let classColors: [Canvas.Color] = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (145, 30, 180), (70, 240, 240)]

    /// The middle slice (along D) of three `[D, H, W]` volumes of `shape` as an `overlay`, rows
    /// flipped so that +y (anterior/up in most files) is at the top.
    public static func middleSliceOverlay(image: [Float], reference: [Float], prediction: [Float], shape: [Int]) -> Canvas {
        let (d, h, w) = (shape[0], shape[1], shape[2])
        let first = (d / 2) * h * w
        func flipped(_ a: [Float]) -> [Float] {
            var out = [Float](); out.reserveCapacity(h * w)
            let base = first
            for y in (0..<h).reversed() { out += a[(base + y * w)..<(base + (y + 1) * w)] }
            return out
        }
        return overlay(image: flipped(image), reference: flipped(reference), prediction: flipped(prediction), height: h, width: w)
    }

    /// One slice side by side: left the reference labels, right the prediction, each as a
    /// translucent colour over the grey image with the class outline drawn opaque. The image is
    /// windowed to its 1st–99th percentiles and enlarged (nearest neighbour) to at least 256
    /// pixels high. Arrays are `[H, W]` row-major, top row first.
    public static func overlay(image: [Float], reference: [Float], prediction: [Float], height: Int, width: Int) -> Canvas {
        precondition(image.count == height * width && reference.count == image.count && prediction.count == image.count,
                     "overlay arrays must be one slice of the given size")
        let scale = max(1, (256 + height - 1) / height)
        let gap = 8
        var canvas = Canvas(width: 2 * width * scale + gap, height: height * scale + 20, background: (0, 0, 0))
        let sorted = image.filter(\.isFinite).sorted()
        let lo = sorted.isEmpty ? 0 : sorted[sorted.count / 100], hi = sorted.isEmpty ? 1 : sorted[(sorted.count * 99) / 100]
        let span = max(hi - lo, 1e-6)
        for (panelIndex, labels) in [reference, prediction].enumerated() {
            let ox = panelIndex * (width * scale + gap)
            for y in 0..<height {
                for x in 0..<width {
                    let i = y * width + x
                    let g = UInt8(max(0, min(255, ((image[i] - lo) / span * 255).rounded())))
                    let k = Int(labels[i])
                    let edge = k > 0 && (x == 0 || y == 0 || x == width - 1 || y == height - 1
                        || Int(labels[i - 1]) != k || Int(labels[i + 1]) != k
                        || Int(labels[i - width]) != k || Int(labels[i + width]) != k)
                    for sy in 0..<scale {
                        for sx in 0..<scale {
                            let px = ox + x * scale + sx, py = 20 + y * scale + sy
                            canvas.set(px, py, (g, g, g))
                            if k > 0 {
                                canvas.set(px, py, classColors[(k - 1) % classColors.count], alpha: edge ? 1 : 0.35)
                            }
                        }
                    }
                }
            }
            canvas.text(panelIndex == 0 ? "reference" : "prediction", x: ox + 4, y: 6, (255, 255, 255))
        }
        return canvas
    }
}
