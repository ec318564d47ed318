import ArgumentParser
import Foundation
import MorphoIO
import MorphoTrain

/// `morphoseg evaluate --prediction P --reference R [--json] [--csv FILE] [--report FILE]`.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare label maps with references: Dice, HD95 and mean surface distance per label.",
        discussion: """
            Both files must be on the same voxel grid (size and affine). Every label > 0 present in \
            either file is scored (or the --labels given). HD95 is the larger of the two directed 95th \
            percentile surface distances, MSD (ASSD) the mean of all surface distances in both \
            directions, both in mm with the voxel spacing; a label missing from one file has infinite \
            distances (null in JSON). With two folders, files are paired by case name (the file name \
            without .nii/.nii.gz; every prediction needs its reference and the other way round): a \
            per-case table and, per label, the mean and standard deviation over the cases; --csv \
            writes them as CSV, and report.html (beside the CSV, or at --report) shows them in a \
            browser with the overlay of the case with the lowest mean Dice.
            """)

    @Option(name: .long, help: "Predicted label map, or a folder of them.")
    var prediction: String

    @Option(name: .long, help: "Reference label map, or a folder of them.")
    var reference: String

    @Option(name: .long, parsing: .upToNextOption, help: "Labels to score (default: all labels > 0 found).")
    var labels: [Int] = []

    @Flag(help: "Print one JSON object.")
    var json = false

    @Option(help: "Also write the per-case rows and the summary as CSV here (folders only).")
    var csv: String?

    @Option(help: "Write the HTML report here (folders only; default: report.html beside --csv, none without --csv).")
    var report: String?

    func run() throws {
        let scored = labels.isEmpty ? nil : labels
        guard isFolder(prediction) || isFolder(reference) else {
            if csv != nil || report != nil { throw ValidationError("--csv and --report need folders for --prediction and --reference") }
            let e = try Evaluation.files(prediction: prediction, reference: reference, labels: scored)
            print(json ? e.json : e.table, terminator: json ? "\n" : "")
            return
        }
        guard isFolder(prediction), isFolder(reference) else {
            throw ValidationError("--prediction and --reference must both be files or both be folders")
        }
        let reportPath = report ?? EvaluationReport.defaultPath(csv: csv)
        let outputs = [("--csv", csv), ("--report", reportPath)].compactMap { name, path in path.map { (name, $0) } }
        if !outputs.isEmpty { try OutputPaths.checkDistinct(inputs: [prediction, reference], outputs: outputs) }
        let e = try FolderEvaluation.folders(prediction: prediction, reference: reference, labels: scored)
        if let csv {
            do {
                try e.csv.write(toFile: csv, atomically: true, encoding: .utf8)
            } catch {
                throw MorphoTrainError.output(path: csv, message: "cannot write the CSV (\(error.localizedDescription))")
            }
        }
        if let reportPath { try EvaluationReport(e).document.write(to: reportPath) }
        print(json ? e.json : e.table, terminator: json ? "\n" : "")
    }

    private func isFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
