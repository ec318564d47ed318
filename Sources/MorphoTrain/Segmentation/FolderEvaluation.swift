import Foundation
import MorphoIO

/// `morphoseg evaluate` on two folders: predicted label maps paired with references by case name
/// (the file name without `.nii`/`.nii.gz`), each pair scored by `Evaluation.files`, and a summary
/// per label over the cases: mean and standard deviation of Dice, HD95 and ASSD.
///
/// ASSD, the average symmetric surface distance, is `Evaluation`'s `msd` (all surface distances
/// of both directions pooled). Distances are infinite for a case where a label is absent from one
/// file but not the other; the summary then averages the finite ones and says how many there were.
public struct FolderEvaluation: Sendable {
    public var prediction: String
    public var reference: String
    /// Scored labels (> 0), ascending.
    public var labels: [Int]
    /// One evaluation per case, sorted by case name.
    public var cases: [(name: String, evaluation: Evaluation)]

    /// Mean and sample standard deviation of one figure over the cases where it is finite.
    public struct Summary: Sendable, Equatable {
        public var mean: Double
        public var std: Double
        /// Cases with a finite value.
        public var count: Int

        init(_ values: [Double]) {
            let finite = values.filter(\.isFinite)
            count = finite.count
            guard !finite.isEmpty else {
                mean = .infinity
                std = .nan
                return
            }
            let m = finite.reduce(0, +) / Double(finite.count)
            mean = m
            std = finite.count < 2 ? 0 : (finite.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(finite.count - 1)).squareRoot()
        }
    }

    /// Scores every case of two folders.
    ///
    /// - Parameter labels: labels to score; default every label > 0 in any file of either folder.
    /// - Throws: `MorphoTrainError.fileNotFound` / `.dataset` for a missing or empty folder,
    ///   `.dataset` naming a prediction without reference or a reference without prediction,
    ///   and `Evaluation.files`' errors naming the file.
    public static func folders(prediction: String, reference: String, labels: [Int]? = nil) throws -> FolderEvaluation {
        let predicted = try casesByName(prediction)
        let referenced = try casesByName(reference)
        if let orphan = predicted.keys.sorted().first(where: { referenced[$0] == nil }) {
            throw MorphoTrainError.dataset(source: predicted[orphan]!, message: "no reference \(orphan).nii(.gz) in \(reference)")
        }
        if let missing = referenced.keys.sorted().first(where: { predicted[$0] == nil }) {
            throw MorphoTrainError.dataset(source: referenced[missing]!, message: "no prediction \(missing).nii(.gz) in \(prediction)")
        }
        let names = referenced.keys.sorted()
        var scored = labels
        if scored == nil {
            var found = Set<Int>()
            for name in names {
                for path in [predicted[name]!, referenced[name]!] {
                    for v in try NIfTI.read(path).data where v > 0 && v == v.rounded() { found.insert(Int(v)) }
                }
            }
            scored = found.sorted()
        }
        let cases = try names.map { ($0, try Evaluation.files(prediction: predicted[$0]!, reference: referenced[$0]!, labels: scored)) }
        return FolderEvaluation(prediction: prediction, reference: reference, labels: scored!, cases: cases)
    }

    /// Case name → path of the NIfTI files in `folder`.
    static func casesByName(_ folder: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for path in try Segmenter.niftiFiles(in: folder) {
            let name = CaseList.stem(path)
            if let other = out[name] {
                throw MorphoTrainError.dataset(source: path, message: "case \(name) is also \(other)")
            }
            out[name] = path
        }
        return out
    }

    /// The summary of `label`: Dice, HD95 and ASSD.
    public func summary(label: Int) -> (dice: Summary, hd95: Summary, assd: Summary) {
        let metrics = cases.compactMap { c in c.evaluation.labels.first { $0.label == label } }
        return (Summary(metrics.map(\.dice)), Summary(metrics.map(\.hd95)), Summary(metrics.map(\.meanSurfaceDistance)))
    }

    /// Per-case rows, then per label the mean ± std over the cases (distances in mm).
    public var table: String {
        let width = max(4, cases.map(\.name.count).max() ?? 0)
        func pad(_ s: String) -> String { s.padding(toLength: width, withPad: " ", startingAt: 0) }
        var out = "\(pad("case"))  label   dice     hd95 (mm)  assd (mm)\n"
        for c in cases {
            for m in c.evaluation.labels {
                out += pad(c.name) + String(format: "  %5d   %.4f   %9.3f  %9.3f\n", m.label, m.dice, m.hd95, m.meanSurfaceDistance)
            }
        }
        out += "\nsummary over \(cases.count) case\(cases.count == 1 ? "" : "s") (mean ± std; distances over the cases where they are finite)\n"
        out += "label   dice               hd95 (mm)            assd (mm)\n"
        for label in labels {
            let s = summary(label: label)
            func f(_ x: Summary) -> String {
                String(format: "%8.3f ± %-8.3f", x.mean, x.std) + (x.count < cases.count ? " (\(x.count))" : "")
            }
            out += String(format: "%5d   %.4f ± %.4f   ", label, s.dice.mean, s.dice.std) + f(s.hd95) + "  " + f(s.assd) + "\n"
        }
        return out
    }

    /// `{"prediction", "reference", "labels", "cases": [{"case", "labels": [{"label", "dice",
    /// "hd95", "assd", "predicted_voxels", "reference_voxels"}]}], "summary": [{"label", "dice":
    /// {"mean", "std", "count"}, "hd95": {…}, "assd": {…}}]}`; infinite or undefined values are `null`.
    public var json: String {
        func n(_ v: Double) -> String { EpochRecord.number(v) }
        func s(_ v: String) -> String { Self.jsonString(v) }
        func summary(_ x: Summary) -> String { "{\"mean\": \(n(x.mean)), \"std\": \(n(x.std)), \"count\": \(x.count)}" }
        let caseRows = cases.map { c in
            let rows = c.evaluation.labels.map {
                "{\"label\": \($0.label), \"dice\": \(n($0.dice)), \"hd95\": \(n($0.hd95)), \"assd\": \(n($0.meanSurfaceDistance)), "
                    + "\"predicted_voxels\": \($0.predictedVoxels), \"reference_voxels\": \($0.referenceVoxels)}"
            }
            return "{\"case\": \(s(c.name)), \"labels\": [\(rows.joined(separator: ", "))]}"
        }
        let summaryRows = labels.map { label -> String in
            let x = self.summary(label: label)
            return "{\"label\": \(label), \"dice\": \(summary(x.dice)), \"hd95\": \(summary(x.hd95)), \"assd\": \(summary(x.assd))}"
        }
        return "{\"prediction\": \(s(prediction)), \"reference\": \(s(reference)), \"labels\": [\(labels.map(String.init).joined(separator: ", "))], "
            + "\"cases\": [\(caseRows.joined(separator: ", "))], \"summary\": [\(summaryRows.joined(separator: ", "))]}"
    }

    /// One row per case and label (`case,label,dice,hd95,assd,predicted_voxels,reference_voxels`),
    /// then per label a `mean` and a `std` row; infinite or undefined values are empty fields.
    public var csv: String {
        func n(_ v: Double) -> String { v.isFinite ? "\(v)" : "" }
        func field(_ s: String) -> String {
            s.contains(where: { ",\"\n".contains($0) }) ? "\"\(s.replacingOccurrences(of: "\"", with: "\"\""))\"" : s
        }
        var out = "case,label,dice,hd95,assd,predicted_voxels,reference_voxels\n"
        for c in cases {
            for m in c.evaluation.labels {
                out += "\(field(c.name)),\(m.label),\(n(m.dice)),\(n(m.hd95)),\(n(m.meanSurfaceDistance)),\(m.predictedVoxels),\(m.referenceVoxels)\n"
            }
        }
        for label in labels {
            let s = summary(label: label)
            out += "mean,\(label),\(n(s.dice.mean)),\(n(s.hd95.mean)),\(n(s.assd.mean)),,\n"
            out += "std,\(label),\(n(s.dice.std)),\(n(s.hd95.std)),\(n(s.assd.std)),,\n"
        }
        return out
    }

    static func jsonString(_ v: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: [v], options: [.withoutEscapingSlashes])
        return data.flatMap { String(data: $0, encoding: .utf8) }.map { String($0.dropFirst().dropLast()) } ?? "\"\""
    }
}
