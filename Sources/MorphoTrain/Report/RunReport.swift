import Foundation

/// A training run's `report.html`, built from its run folder: learning curves from
/// `metrics.jsonl` (the training loss and each loss term; the validation metrics grouped by
/// scale: overlaps, surface distances in mm, and each other metric alone), the latest validation's
/// metrics, the latest validation's metrics per case (`validation_cases.json`), one row per
/// epoch, the middle-slice overlay of the first validation case (`overlay.png`) and the
/// resolved config.
///
/// The trainer refreshes it after each validation and at the end of the run (`refresh`): it reads
/// a few small files and writes one, so it costs milliseconds beside an epoch.
public struct RunReport: Sendable {
    public var title: String
    /// The task kind (`segmentation`, `registration`, `joint`).
    public var kind: String
    /// One record per completed epoch, in order.
    public var history: [EpochRecord]
    /// Planned epochs (`training.epochs`), for "N of M".
    public var plannedEpochs: Int?
    /// The validation metric that selects the best checkpoint (higher is better).
    public var scoreName: String?
    /// The whole resolved config (YAML), shown verbatim.
    public var resolvedConfig: String
    /// The overlay picture as PNG bytes, when there is one.
    public var overlay: [UInt8]?
    /// The latest validation per case, when the run kept it.
    public var cases: ValidationCases?

    public init(
        title: String, kind: String, history: [EpochRecord], plannedEpochs: Int? = nil, scoreName: String? = nil, resolvedConfig: String,
        overlay: [UInt8]? = nil, cases: ValidationCases? = nil
    ) {
        self.cases = cases
        self.title = title
        self.kind = kind
        self.history = history
        self.plannedEpochs = plannedEpochs
        self.scoreName = scoreName
        self.resolvedConfig = resolvedConfig
        self.overlay = overlay
    }

    /// The file of the run folder holding the whole resolved config of a run of `kind`: a
    /// registration or joint run keeps it in `registration.yaml` / `joint.yaml` (its
    /// `config.yaml` has the shared sections only), a segmentation run in `config.yaml`.
    static func resolvedConfigFile(kind: TaskKind) -> String {
        switch kind {
        case .segmentation: "config.yaml"
        case .registration: "registration.yaml"
        case .joint: "joint.yaml"
        }
    }

    /// Reads the report's material from `runFolder` (missing files leave their section empty;
    /// unparsable `metrics.jsonl` lines are skipped). `history` (the records of `metrics.jsonl`,
    /// as the trainer holds them) saves parsing the file again; `overlay` replaces `overlay.png`.
    public static func load(
        runFolder: String, config: RunConfig, scoreName: String?, history: [EpochRecord]? = nil, overlay: [UInt8]? = nil
    ) -> RunReport {
        let history = history ?? ((try? String(contentsOfFile: runFolder + "/metrics.jsonl", encoding: .utf8)) ?? "")
            .split(separator: "\n").compactMap { EpochRecord(json: String($0)) }
        let resolved = (try? String(contentsOfFile: runFolder + "/" + resolvedConfigFile(kind: config.model.kind), encoding: .utf8)) ?? config.yaml
        let picture = overlay ?? FileManager.default.contents(atPath: runFolder + "/overlay.png").map { [UInt8]($0) }
        return RunReport(
            title: "MorphoSeg run \(config.name)", kind: config.model.kind.rawValue, history: history, plannedEpochs: config.training.epochs,
            scoreName: scoreName, resolvedConfig: resolved, overlay: picture, cases: ValidationCases.load(runFolder: runFolder))
    }

    /// Writes `<runFolder>/report.html` from the folder as it is now (see `load`). With `drawOverlay` (a run
    /// without `output.plots`, so without `overlay.png`) the task draws its overlay into a
    /// temporary file that is inlined and removed.
    ///
    /// - Throws: `MorphoTrainError.output` when the report cannot be written.
    public static func refresh(
        runFolder: String, config: RunConfig, scoreName: String?, history: [EpochRecord]? = nil, drawOverlay: ((String) throws -> Void)? = nil
    ) throws {
        var overlay: [UInt8]?
        if let drawOverlay {
            let temporary = NSTemporaryDirectory() + "/morphoseg-overlay-\(UUID().uuidString).png"
            defer { try? FileManager.default.removeItem(atPath: temporary) }
            try drawOverlay(temporary)
            overlay = FileManager.default.contents(atPath: temporary).map { [UInt8]($0) }
        }
        try load(runFolder: runFolder, config: config, scoreName: scoreName, history: history, overlay: overlay).document
            .write(to: runFolder + "/report.html")
    }

    /// The charts of the learning curves: training loss first, then the validation groups.
    public var charts: [SVGLineChart] {
        func series(_ name: String, _ value: (EpochRecord) -> Double?) -> SVGLineChart.Series {
            SVGLineChart.Series(name: name, points: history.compactMap { r in value(r).map { (Double(r.epoch), $0) } })
        }
        var lossSeries = [series("loss (weighted total)") { $0.loss }]
        for name in history.last?.terms.map(\.name) ?? [] {
            lossSeries.append(series(name) { r in r.terms.first { $0.name == name }?.value })
        }
        var out = [SVGLineChart(title: "training loss", xLabel: "epoch", yLabel: "loss", series: lossSeries)]
        for group in Self.metricGroups(history.flatMap { $0.validation.map(\.name) }) {
            let s = group.metrics.map { name in series(name) { $0.metric(name) } }
            out.append(SVGLineChart(title: "validation: \(group.title)", xLabel: "epoch", yLabel: group.unit, series: s))
        }
        return out
    }

    /// Validation metric names (first-seen order) grouped into charts of one scale: overlaps in
    /// [0, 1] (`dice*`, `*similarity*`), surface distances in mm (`hd95.*`, `msd.*`), and every
    /// other metric alone.
    static func metricGroups(_ names: [String]) -> [(title: String, unit: String, metrics: [String])] {
        var seen = Set<String>(), ordered: [String] = []
        for n in names where seen.insert(n).inserted { ordered.append(n) }
        let overlap = ordered.filter { $0.contains("dice") || $0.contains("similarity") }
        let distance = ordered.filter { $0.hasPrefix("hd95") || $0.hasPrefix("msd") }
        let other = ordered.filter { !overlap.contains($0) && !distance.contains($0) }
        var groups: [(title: String, unit: String, metrics: [String])] = []
        if !overlap.isEmpty { groups.append(("overlap", "Dice / similarity", overlap)) }
        if !distance.isEmpty { groups.append(("surface distance", "mm", distance)) }
        for n in other { groups.append((n, n.hasSuffix("percent") ? "%" : n, [n])) }
        return groups
    }

    /// The page.
    public var document: HTMLDocument {
        var doc = HTMLDocument(title: title)
        let validated = history.filter { !$0.validation.isEmpty }
        var meta = "\(kind) · \(history.count)"
        if let plannedEpochs { meta += " of \(plannedEpochs)" }
        meta += " epochs"
        if let scoreName, let best = validated.compactMap({ r in r.metric(scoreName).flatMap { $0.isFinite ? (r.epoch, $0) : nil } })
            .max(by: { $0.1 < $1.1 }) {
            meta += " · best \(scoreName) \(Self.number(best.1)) at epoch \(best.0)"
        }
        meta += " · written \(Self.timestamp())"
        doc.paragraph(meta, className: "meta")

        doc.heading("Learning curves")
        for chart in charts { doc.raw(chart.svg) }

        doc.heading("Validation overlay")
        if let overlay {
            doc.image(
                png: overlay, alt: "middle slice of the first validation case",
                caption: "Middle slice of the first validation case at the latest validation: reference (left), prediction (right).")
        } else {
            doc.paragraph("No overlay yet (written after the first validation).")
        }

        doc.heading("Latest validation")
        if let last = validated.last {
            doc.table(
                header: ["metric", "value"], rows: last.validation.map { [$0.name, Self.number($0.value)] },
                caption: "epoch \(last.epoch); distances in mm, ∞ where a class is missing from the prediction")
        } else {
            doc.paragraph("No validation yet.")
        }

        doc.heading("Per-case validation")
        if let cases {
            doc.table(
                header: ["case"] + cases.metrics, rows: cases.cases.map { [$0.name] + $0.values.map(Self.number) },
                caption: "validation at epoch \(cases.epoch), one row per held-out case; distances in mm, ∞ where a class is missing from the prediction")
        } else {
            doc.paragraph(history.contains { !$0.validation.isEmpty } ? "No per-case metrics for this run." : "No validation yet.")
        }

        doc.heading("Epochs")
        let termNames = history.last?.terms.map(\.name) ?? []
        let score = scoreName ?? ""
        let header = ["epoch", "learning rate", "loss"] + termNames + (scoreName.map { [$0] } ?? []) + ["seconds"]
        let rows = history.map { r -> [String] in
            var row = [String(r.epoch), String(format: "%.3g", r.learningRate), Self.number(r.loss)]
            row += termNames.map { name in r.terms.first { $0.name == name }.map { Self.number($0.value) } ?? "" }
            if scoreName != nil { row.append(r.metric(score).map(Self.number) ?? "") }
            row.append(String(format: "%.1f", r.seconds))
            return row
        }
        doc.table(header: header, rows: rows, caption: "one row per completed epoch; loss terms unweighted, seconds including validation")

        doc.heading("Resolved config")
        doc.preformatted(resolvedConfig)
        return doc
    }

    /// Four significant digits; ∞ for infinities, "nan" for NaN.
    static func number(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "∞" : "-∞" }
        return String(format: "%.4g", v)
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        return f.string(from: Date())
    }
}
