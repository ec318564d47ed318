import Foundation

/// The latest validation's metrics per held-out case (subject, pair), as the run folder keeps
/// them in `validation_cases.json` for `report.html`'s per-case table: the rows the validation
/// mean (`metrics.jsonl`'s `val.*`) was taken over, one per case, with the case's name.
///
///     {"epoch": 12, "metrics": ["dice_mean", "dice.1", "hd95.1", "msd.1"],
///      "cases": [{"case": "case_003", "values": [0.91, 0.91, 2.2, 0.4]}, …]}
///
/// Distances are in mm; `null` stands for an infinite value (a class missing from a prediction).
public struct ValidationCases: Equatable, Sendable {
    public var epoch: Int
    /// Metric names, the columns (the same for every case).
    public var metrics: [String]
    public var cases: [(name: String, values: [Double])]

    /// The file in a run folder.
    public static let fileName = "validation_cases.json"

    /// Rows as `validateShard` returns them (named per case), for `names[i]` and `rows[i]`; nil
    /// when the counts differ or a row's metrics are not the first's.
    public init?(epoch: Int, names: [String], rows: [[(name: String, value: Double)]]) {
        guard !rows.isEmpty, names.count == rows.count else { return nil }
        let metrics = rows[0].map(\.name)
        guard rows.allSatisfy({ $0.map(\.name) == metrics }) else { return nil }
        self.epoch = epoch
        self.metrics = metrics
        cases = zip(names, rows).map { ($0, $1.map(\.value)) }
    }

    public static func == (a: ValidationCases, b: ValidationCases) -> Bool {
        a.epoch == b.epoch && a.metrics == b.metrics && a.cases.count == b.cases.count
            && zip(a.cases, b.cases).allSatisfy { $0.name == $1.name && $0.values.elementsEqual($1.values) { $0 == $1 || ($0.isNaN && $1.isNaN) } }
    }

    public var json: String {
        func list(_ v: [String]) -> String { "[" + v.joined(separator: ", ") + "]" }
        let rows = cases.map { "    {\"case\": \(FolderEvaluation.jsonString($0.name)), \"values\": \(list($0.values.map(EpochRecord.number)))}" }
        return "{\"epoch\": \(epoch), \"metrics\": \(list(metrics.map(FolderEvaluation.jsonString))),\n  \"cases\": [\n"
            + rows.joined(separator: ",\n") + "\n  ]}\n"
    }

    /// Parses `json`'s text (`null` reads as +∞); nil for anything else. Numbers are read from
    /// their own text, as `EpochRecord` does: Foundation's parser can land one ulp off.
    public init?(json text: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let epoch = object["epoch"] as? Int, let metrics = object["metrics"] as? [String],
            let rows = object["cases"] as? [[String: Any]]
        else { return nil }
        let lists = text.components(separatedBy: "\"values\": [").dropFirst().map { part in
            part.prefix { $0 != "]" }.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) ?? .infinity }
        }
        guard lists.count == rows.count else { return nil }
        var cases: [(name: String, values: [Double])] = []
        for (row, values) in zip(rows, lists) {
            guard let name = row["case"] as? String, values.count == metrics.count else { return nil }
            cases.append((name, values))
        }
        self.epoch = epoch
        self.metrics = metrics
        self.cases = cases
    }

    /// Reads `<runFolder>/validation_cases.json`; nil when absent or unreadable.
    public static func load(runFolder: String) -> ValidationCases? {
        (try? String(contentsOfFile: runFolder + "/" + fileName, encoding: .utf8)).flatMap { ValidationCases(json: $0) }
    }

    /// Writes `<runFolder>/validation_cases.json` atomically.
    ///
    /// - Throws: `MorphoTrainError.output` naming the file.
    public func write(runFolder: String) throws {
        let path = runFolder + "/" + Self.fileName
        do {
            try json.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw MorphoTrainError.output(path: path, message: "cannot write (\(error.localizedDescription))")
        }
    }
}
