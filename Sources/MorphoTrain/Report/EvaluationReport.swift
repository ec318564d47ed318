import Foundation
import MorphoIO

/// `report.html` of a folder evaluation (`morphoseg evaluate --prediction DIR --reference DIR`):
/// per label the summary over the cases (Dice, HD95, ASSD as mean ± sample std; distances in mm,
/// over the cases where they are finite), one table row per case (Dice, HD95, ASSD of each label),
/// and the middle-slice overlay of the case with the lowest mean Dice (reference left, prediction
/// right, on black: the evaluation has no image).
public struct EvaluationReport: Sendable {
    public var evaluation: FolderEvaluation
    /// The overlay of `worstCase` as PNG bytes (nil when the files could not be drawn).
    public var overlay: [UInt8]?

    /// The report of `evaluation`; draws the overlay from the worst case's two files.
    public init(_ evaluation: FolderEvaluation) {
        self.evaluation = evaluation
        overlay = nil
        if let worst = worstCase { overlay = Self.overlay(evaluation.cases[worst].evaluation) }
    }

    /// The middle slice of a case's reference and prediction as PNG bytes; nil when the files
    /// cannot be read again (they were read moments ago, so only a race would do it).
    static func overlay(_ e: Evaluation) -> [UInt8]? {
        guard let p = try? NIfTI.read(e.prediction), let r = try? NIfTI.read(e.reference), r.channels == 1, p.data.count == r.data.count
        else { return nil }
        let canvas = Plots.middleSliceOverlay(
            image: [Float](repeating: 0, count: r.data.count), reference: r.data, prediction: p.data, shape: r.spatialShape)
        return try? PNG.encode(canvas.pixels, width: canvas.width, height: canvas.height, color: .rgb)
    }

    /// Index of the case with the lowest mean Dice over its labels (the first of equals).
    public var worstCase: Int? {
        evaluation.cases.indices.min { evaluation.cases[$0].evaluation.meanDice < evaluation.cases[$1].evaluation.meanDice }
    }

    /// The page.
    public var document: HTMLDocument {
        let e = evaluation
        var doc = HTMLDocument(title: "MorphoSeg evaluation")
        doc.paragraph(
            "\(e.cases.count) case\(e.cases.count == 1 ? "" : "s") · labels \(e.labels.map(String.init).joined(separator: ", ")) · "
                + "prediction \(e.prediction) · reference \(e.reference) · written \(RunReport.timestamp())",
            className: "meta")

        doc.heading("Summary")
        func summary(_ s: FolderEvaluation.Summary, digits: Int) -> String {
            guard s.count > 0 else { return "∞" }
            let text = String(format: "%.\(digits)f ± %.\(digits)f", s.mean, s.std)
            return s.count < e.cases.count ? text + " (\(s.count) finite)" : text
        }
        doc.table(
            header: ["label", "Dice", "HD95 (mm)", "ASSD (mm)"],
            rows: e.labels.map { label in
                let s = e.summary(label: label)
                return [String(label), summary(s.dice, digits: 4), summary(s.hd95, digits: 3), summary(s.assd, digits: 3)]
            },
            caption: "mean ± sample standard deviation over the cases")

        doc.heading("Cases")
        func millimetres(_ v: Double) -> String { v.isFinite ? String(format: "%.3f", v) : "∞" }
        var header = ["case", "mean Dice"]
        for label in e.labels { header += ["Dice \(label)", "HD95 \(label)", "ASSD \(label)"] }
        let rows = e.cases.map { c -> [String] in
            var row = [c.name, String(format: "%.4f", c.evaluation.meanDice)]
            for label in e.labels {
                if let m = c.evaluation.labels.first(where: { $0.label == label }) {
                    row += [String(format: "%.4f", m.dice), millimetres(m.hd95), millimetres(m.meanSurfaceDistance)]
                } else {
                    row += ["", "", ""]
                }
            }
            return row
        }
        doc.table(header: header, rows: rows, caption: "one row per case; distances in mm, ∞ where a label is in one file only")

        doc.heading("Lowest mean Dice")
        if let worst = worstCase, let overlay {
            doc.image(
                png: overlay, alt: "middle slice of case \(e.cases[worst].name)",
                caption: "Case \(e.cases[worst].name), middle slice: reference (left), prediction (right).")
        } else {
            doc.paragraph("No overlay: no case could be drawn.")
        }
        return doc
    }

    /// Where `evaluate` writes the report when `--report` is not given: beside the CSV, or nil
    /// (no file) when there is no CSV either.
    public static func defaultPath(csv: String?) -> String? {
        csv.map { (($0 as NSString).deletingLastPathComponent as NSString).appendingPathComponent("report.html") }
    }
}
