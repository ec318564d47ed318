import Foundation

/// One line of a run's `metrics.jsonl`: what happened in one epoch.
///
/// Keys, in this order: `epoch` (1-based, completed epochs), `lr`, the task's scalars (segmentation:
/// `alpha`, the boundary weight), `loss` (mean weighted total
/// over the epoch's steps), `loss.<term>` (mean unweighted value of each loss term),
/// `weight.<term>` (the term's weight that epoch; for the boundary loss this is α), then after a
/// validation `val.<metric>` (for segmentation `val.dice_mean`, `val.dice.<k>`, `val.hd95.<k>`,
/// `val.msd.<k>`, distances in mm; `null` when infinite, i.e. a class missing from the prediction),
/// and `seconds` (wall time of the epoch including validation).
public struct EpochRecord: Sendable {
    public var epoch: Int
    public var learningRate: Double
    /// Task scalars logged after `lr` (e.g. `alpha`).
    public var scalars: [(name: String, value: Double)]
    public var loss: Double
    /// Mean unweighted value per loss term, in the loss's term order.
    public var terms: [(name: String, value: Double)]
    /// Weight of each term during the epoch.
    public var weights: [(name: String, value: Double)]
    /// Validation metrics (empty when the epoch had no validation).
    public var validation: [(name: String, value: Double)]
    public var seconds: Double

    public init(
        epoch: Int, learningRate: Double, scalars: [(name: String, value: Double)] = [], loss: Double,
        terms: [(name: String, value: Double)],
        weights: [(name: String, value: Double)], validation: [(name: String, value: Double)], seconds: Double
    ) {
        self.epoch = epoch
        self.learningRate = learningRate
        self.scalars = scalars
        self.loss = loss
        self.terms = terms
        self.weights = weights
        self.validation = validation
        self.seconds = seconds
    }

    /// The validation metric `name` (without the `val.` prefix).
    public func metric(_ name: String) -> Double? { validation.first { $0.name == name }?.value }

    /// One JSON object on one line (keys as documented above).
    public var json: String {
        var parts = ["\"epoch\": \(epoch)", "\"lr\": \(Self.number(learningRate))"]
        parts += scalars.map { "\"\($0.name)\": \(Self.number($0.value))" }
        parts.append("\"loss\": \(Self.number(loss))")
        parts += terms.map { "\"loss.\($0.name)\": \(Self.number($0.value))" }
        parts += weights.map { "\"weight.\($0.name)\": \(Self.number($0.value))" }
        parts += validation.map { "\"val.\($0.name)\": \(Self.number($0.value))" }
        parts.append("\"seconds\": \(Self.number((seconds * 1000).rounded() / 1000))")
        return "{" + parts.joined(separator: ", ") + "}"
    }

    /// The same line without `seconds`, for comparing runs.
    public var jsonWithoutTime: String {
        var copy = self
        copy.seconds = 0
        return copy.json.replacingOccurrences(of: ", \"seconds\": 0.0", with: "")
    }

    /// Parses a line written by `json` (key order within groups is the file's).
    public init?(json line: String) {
        guard let data = line.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let epoch = object["epoch"] as? Int
        else { return nil }
        // Numbers are read from their own text: Foundation's JSON parser can land one ulp off
        // (31.78085517883302 came back as 31.780855178833008), and a resumed run's log must
        // repeat the uninterrupted run's numbers exactly. `null` (NaN, infinities) reads as ∞.
        let fields = Self.fields(line)
        let numbers = Dictionary(fields.map { ($0.key, $0.text) }, uniquingKeysWith: { _, last in last })
        func value(_ key: String) -> Double { numbers[key].flatMap { Double($0) } ?? .infinity }
        self.epoch = epoch
        learningRate = value("lr")
        loss = value("loss")
        seconds = value("seconds")
        // JSONSerialization loses order: restore it from the text.
        let keys = fields.map(\.key)
        let fixed: Set<String> = ["epoch", "lr", "loss", "seconds"]
        let lossIndex = keys.firstIndex(of: "loss") ?? keys.count
        scalars = keys[..<lossIndex].filter { !fixed.contains($0) }.map { ($0, value($0)) }
        terms = keys.filter { $0.hasPrefix("loss.") }.map { (String($0.dropFirst(5)), value($0)) }
        weights = keys.filter { $0.hasPrefix("weight.") }.map { (String($0.dropFirst(7)), value($0)) }
        validation = keys.filter { $0.hasPrefix("val.") }.map { (String($0.dropFirst(4)), value($0)) }
    }

    /// The top-level fields of a flat JSON object line in their order, each with its value's
    /// text (`"lr": 0.001` → `("lr", "0.001")`); a string value keeps its quotes and so parses
    /// as no number.
    static func fields(_ line: String) -> [(key: String, text: Substring)] {
        var fields: [(key: String, text: Substring)] = []
        var rest = Substring(line)
        while let open = rest.firstIndex(of: "\"") {
            let afterOpen = rest.index(after: open)
            guard let close = rest[afterOpen...].firstIndex(of: "\"") else { break }
            let key = String(rest[afterOpen..<close])
            rest = rest[rest.index(after: close)...]
            let afterKey = rest.drop(while: { $0 == " " })
            guard afterKey.first == ":" else { continue }
            let value = afterKey.dropFirst().drop(while: { $0 == " " })
            if value.first == "\"" {
                let closing = value.dropFirst().firstIndex(of: "\"").map { value.index(after: $0) } ?? value.endIndex
                fields.append((key, value[..<closing]))
                rest = value[closing...]
                continue
            }
            let end = value.firstIndex(where: { $0 == "," || $0 == "}" }) ?? value.endIndex
            fields.append((key, value[..<end].drop(while: { $0 == " " })))
            rest = value[end...]
        }
        return fields
    }

    /// A JSON number; `null` for NaN and infinities.
    static func number(_ v: Double) -> String {
        guard v.isFinite else { return "null" }
        return "\(v)"
    }
}
