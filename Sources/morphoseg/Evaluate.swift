import ArgumentParser
import MorphoTrain

/// `morphoseg evaluate --prediction P --reference R [--json]`.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare a label map with a reference: Dice, HD95 and mean surface distance per label.",
        discussion: """
            Both files must be on the same voxel grid (size and affine). Every label > 0 present in \
            either file is scored (or the --labels given). HD95 is the larger of the two directed 95th \
            percentile surface distances, MSD the mean of all surface distances in both directions, \
            both in mm with the voxel spacing; a label missing from one file has infinite distances \
            (null in JSON).
            """)

    @Option(name: .long, help: "Predicted label map.")
    var prediction: String

    @Option(name: .long, help: "Reference label map.")
    var reference: String

    @Option(name: .long, parsing: .upToNextOption, help: "Labels to score (default: all labels > 0 found).")
    var labels: [Int] = []

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let e = try Evaluation.files(prediction: prediction, reference: reference, labels: labels.isEmpty ? nil : labels)
        print(json ? e.json : e.table, terminator: json ? "\n" : "")
    }
}
