import ArgumentParser
import MorphoDistributed
import MorphoTrain

/// `morphoseg train --config FILE [--output DIR] [--resume | --resume-from CKPT]`.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network from a YAML config (see Configs/README.md).",
        discussion: """
            Writes one folder per run (default runs/<config name>/): config.yaml (the resolved config), \
            metrics.jsonl (one line per epoch: loss terms, weights, learning rate, validation metrics), \
            best.safetensors and last.safetensors (weights, optimiser state, epoch, RNG state, config), \
            curves.png, overlay.png and report.html (one self-contained page: learning curves, overlay, \
            epoch table, resolved config; refreshed after each validation). --resume continues from the run folder's last.safetensors with \
            the config saved in it; the loss curve continues exactly as an uninterrupted run would. \
            A NaN or infinite loss stops training with a message and keeps the last good checkpoint. \
            Under `mpirun -np N` (builds with Open MPI) the N processes train one network data-parallel: \
            each computes its share of every batch, gradients are averaged every step, rank 0 writes \
            the run folder; data and checkpoints must be at the same paths on every host. \
            `morphoseg register train` is this same command, kept as an alias for scripts.
            """)

    @Option(name: .long, help: "The run's YAML config.")
    var config: String?

    @Option(name: .long, help: "Run folder (default: output.dir of the config, runs/<name>).")
    var output: String?

    @Flag(name: .long, help: "Continue the run in the output folder from its last.safetensors.")
    var resume = false

    @Option(name: .customLong("resume-from"), help: "Continue from this checkpoint (its config is used).")
    var resumeFrom: String?

    @Option(name: .long, help: "Train fold k (0-based) of data.folds, in <output>/fold_k; the split is saved as splits.json.")
    var fold: Int?

    @OptionGroup var compute: ComputeOptions

    @Option(name: .customLong("nan-as"), help: "Replace NaN and infinite image voxels by this value (sets data.nan_as; default: refuse such images).")
    var nanAs: Double?

    @Flag(name: .customLong("reset-optimizer"), help: "Resume from a checkpoint without optimizer state, starting the optimizer afresh.")
    var resetOptimizer = false

    @Option(name: .customLong("stop-after"), help: "Stop after this many completed epochs (the schedule still spans all epochs).")
    var stopAfter: Int?

    func validate() throws {
        if config == nil && resumeFrom == nil && !(resume && output != nil) {
            throw ValidationError("give --config FILE, --resume --output RUN_FOLDER or --resume-from CHECKPOINT")
        }
        if resume && resumeFrom != nil { throw ValidationError("--resume and --resume-from exclude each other") }
        if let nanAs, !nanAs.isFinite { throw ValidationError("--nan-as must be a finite number") }
    }

    func run() throws {
        try Distributed.run(threads: compute.threads, collective: isMetByEveryRank) { try train($0) }
    }

    func train(_ parallel: DataParallel) throws {
        let (summary, dir) = try TrainingRun.start(
            configPath: config, output: output, resume: resume, resumeFrom: resumeFrom, stopAfterEpoch: stopAfter,
            resetOptimizer: resetOptimizer, nanAs: nanAs, fold: fold,
            progress: parallel.isRoot ? .automatic() : ProgressReporter(style: .quiet), parallel: parallel)
        if parallel.isRoot { report(summary, dir: dir) }
    }

    func report(_ summary: TrainingSummary, dir: String) {
        let best = summary.bestScore.isFinite
            ? "best validation score \(String(format: "%.4f", summary.bestScore)) at epoch \(summary.bestEpoch)"
            : "no validation score yet"
        print("done: \(summary.epochs) epochs in \(ProgressReporter.duration(summary.seconds)); \(best); outputs in \(dir)/")
    }
}

/// Training errors every MPI rank meets at the same point, so rank 0 alone reports them: a
/// non-finite loss (the loss is all-reduced before the check). Any other error may be one
/// rank's own and is reported by the rank that met it.
func isMetByEveryRank(_ error: any Error) -> Bool {
    if case MorphoTrainError.nonFiniteLoss = error { return true }
    return false
}
