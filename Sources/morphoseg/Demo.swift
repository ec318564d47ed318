import ArgumentParser
import MorphoTrain

/// `morphoseg demo --output DIR`: the embedded default run (what `make demo` runs).
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate phantom NIfTI data, train Configs/demo-seg.yaml on it, segment a held-out phantom.",
        discussion: """
            Writes DIR/data (phantom images, labels and manifest.csv), DIR/run (the training run: \
            config.yaml, metrics.jsonl, checkpoints, curves.png, overlay.png, report.html), and the held-out \
            phantom with its segmentation (DIR/heldout_*.nii.gz). Needs no download.
            """)

    @Option(name: .long, help: "Output folder.")
    var output: String = "runs/demo"

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        ComputeSettings.apply(threads: compute.threads)
        let r = try MorphoTrain.Demo.run(output: output)
        print("""
            demo done in \(ProgressReporter.duration(r.summary.seconds)) of training: best validation mean Dice \
            \(String(format: "%.4f", r.summary.bestScore)) (epoch \(r.summary.bestEpoch))
            held-out phantom: mean Dice \(String(format: "%.4f", r.heldOut.meanDice))
            \(r.heldOut.table)
            data:          \(r.dataDirectory)/ (manifest.csv)
            run:           \(r.runDirectory)/ (config.yaml, metrics.jsonl, best/last.safetensors, curves.png, overlay.png, report.html)
            segmentation:  \(r.segmentation)
            probabilities: \(r.probabilities)
            """)
    }
}
