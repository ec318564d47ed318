import ArgumentParser
import Foundation
import MorphoIO
import MorphoTrain

/// `morphoseg plan DATASET [--output config.yaml] [--fingerprint F] [--budget MINUTES]`.
struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Derive a training config from a dataset folder (nnU-Net v2 or Decathlon layout).",
        discussion: """
            Reads every training case once (checking it as train does) into a fingerprint: voxel \
            spacings and sizes, the share of each image the non-zero region covers, per-channel \
            intensity statistics inside the labelled foreground, voxels per class. From it: the target \
            spacing (median; an anisotropic thick-slice axis at its 10th percentile), 2D or 3D, the \
            patch size and U-Net depth, the batch size, the normalisation (CT: clip to the foreground's \
            0.5/99.5 percentiles and z-score with its statistics; others: per-image z-score), and \
            epochs × steps that fit --budget minutes of training here (a real training step is timed); a \
            budget too short for 2,500 steps halves the patch, one with 20,000 steps to spare doubles it. The \
            fingerprint is printed and saved as JSON; the config, commented with the reason for each \
            choice, runs unchanged with `morphoseg train --config`.
            """)

    @Argument(help: "Dataset folder holding dataset.json.")
    var dataset: String

    @Option(name: .long, help: "Where to write the config (default: <dataset>/plan.yaml).")
    var output: String?

    @Option(name: .long, help: "Where to write the fingerprint JSON (default: <dataset>/fingerprint.json).")
    var fingerprint: String?

    @Option(name: .long, help: "Training time budget in minutes on this machine.")
    var budget: Double = 20

    @Option(name: .long, help: "Run name in the config (default: the dataset folder's name).")
    var name: String?

    func validate() throws {
        guard budget > 0 else { throw ValidationError("--budget must be positive") }
    }

    func run() throws {
        let root = (dataset as NSString).standardizingPath
        let configPath = output ?? "\(root)/plan.yaml"
        let fingerprintPath = fingerprint ?? "\(root)/fingerprint.json"
        try OutputPaths.checkDistinct(
            inputs: [DatasetFolder.descriptionPath(root)], outputs: [("--output", configPath), ("--fingerprint", fingerprintPath)])
        let folder = try DatasetFolder.read(root)
        let fp = try DatasetFingerprint.extract(folder)
        let runName = name ?? (root as NSString).lastPathComponent
        let plan = try DatasetPlanner.plan(fp, dataset: root, name: runName.isEmpty ? "plan" : runName, budgetMinutes: budget)
        for (path, text) in [(fingerprintPath, fp.json), (configPath, plan.yaml)] {
            do {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw MorphoTrainError.output(path: path, message: "cannot write (\(error.localizedDescription))")
            }
        }
        print(fp.json, terminator: "")
        for r in plan.reasons { print("- \(r)") }
        print("wrote \(fingerprintPath) and \(configPath)")
    }
}
