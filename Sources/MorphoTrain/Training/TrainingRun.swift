import Foundation
import MorphoDistributed

/// The one way into training, whatever the task: `morphoseg train` parses its options and calls
/// `start`; `Demo`, the tests and the examples call `run` with a config they hold.
///
/// A run, file by file: `TaskConfig.load` reads the YAML once and dispatches on `model.kind`;
/// `run` builds the task of that kind (`SegmentationTask`, `RegistrationTask`, `JointTask`) and
/// hands it to the shared `Trainer`, which steps it with `TrainingStep` and writes the run folder
/// (`config.yaml`, `metrics.jsonl`, `best.safetensors`, `last.safetensors`, plots, `report.html`;
/// registration and joint runs also `registration.yaml` / `joint.yaml`, the whole resolved config).
public enum TrainingRun {
    /// Trains from a config file or continues a run, as `morphoseg train` does.
    ///
    /// - Parameters:
    ///   - configPath: `--config`; may be nil when resuming from a checkpoint.
    ///   - output: `--output` (default: the config's `output.dir`).
    ///   - resume: `--resume`: continue from `<output>/last.safetensors` (`output`, or the config's
    ///     `output.dir` when only `--config` is given), with the config saved in it.
    ///   - resumeFrom: `--resume-from`: continue from this checkpoint.
    ///   - resetOptimizer: `--reset-optimizer`: accept a checkpoint without optimiser state.
    ///   - nanAs: `--nan-as`: sets `data.nan_as` of a new run; a resumed run keeps the value
    ///     saved in its checkpoint, and another value is refused.
    ///   - fold: `--fold`: train fold k of `data.folds` in `<output>/fold_k` (`selectingFold`).
    /// - Returns: the summary and the run folder.
    /// - Throws: `MorphoTrainError.config` when `--config` is given with a checkpoint to resume
    ///   and differs from the config saved in it (a resumed run always uses the saved config);
    ///   any error of loading, training or writing, naming the file or key at fault.
    public static func start(
        configPath: String?, output: String?, resume: Bool = false, resumeFrom: String? = nil, stopAfterEpoch: Int? = nil,
        resetOptimizer: Bool = false, nanAs: Double? = nil, fold: Int? = nil, progress: ProgressReporter = .automatic(),
        parallel: DataParallel = DataParallel()
    ) throws -> (summary: TrainingSummary, output: String) {
        var given = try configPath.map { try TaskConfig.load($0) }.map { config in nanAs.map { config.settingNaNAs($0) } ?? config }
        var output = output
        if let fold {
            guard let loaded = given, let configPath else {
                throw MorphoTrainError.config(file: "(command line)", key: "", message: "--fold needs --config")
            }
            (given, output) = try loaded.selectingFold(fold, base: output, file: configPath)
        }
        var checkpoint = resumeFrom
        if resume, resumeFrom == nil {
            guard let folder = output ?? given?.run.output.dir else {
                throw MorphoTrainError.config(
                    file: "(command line)", key: "", message: "--resume needs the run folder: --output DIR (or --config FILE for its output.dir)")
            }
            checkpoint = folder + "/last.safetensors"
            guard FileManager.default.fileExists(atPath: checkpoint!) else {
                throw MorphoTrainError.fileNotFound(path: checkpoint!, role: "checkpoint")
            }
        }
        var config: TaskConfig
        if let checkpoint {
            config = try TaskConfig(checkpoint: Checkpoint.read(checkpoint), path: checkpoint)
            if let nanAs, config.run.data.nanAs != nanAs {
                throw MorphoTrainError.config(
                    file: checkpoint, key: "data.nan_as",
                    message: "is \(config.run.data.nanAs.map { "\($0)" } ?? "not set") in this run; --nan-as \(nanAs) cannot change it on resume")
            }
            if let given, let configPath, given.yaml != config.yaml {
                throw MorphoTrainError.config(
                    file: configPath, key: "", message: "differs from the config saved in \(checkpoint); omit --config to resume")
            }
        } else if let given {
            config = given
        } else {
            throw MorphoTrainError.config(file: "(command line)", key: "", message: "give a config file or a checkpoint to resume from")
        }
        let dir = output ?? config.run.output.dir
        let summary = try run(
            config, output: dir, resume: checkpoint, stopAfterEpoch: stopAfterEpoch, resetOptimizer: resetOptimizer, progress: progress,
            parallel: parallel)
        return (summary, dir)
    }

    /// Trains `config` into `output` (default `config.run.output.dir`), resuming from `resume` if
    /// given, in one process or over the ranks of `parallel` (rank 0 alone writes the folder).
    ///
    /// - Throws: `MorphoTrainError` / `MorphoIOError` with the file or key at fault.
    public static func run(
        _ config: TaskConfig, output: String? = nil, resume: String? = nil, stopAfterEpoch: Int? = nil, resetOptimizer: Bool = false,
        progress: ProgressReporter = .automatic(), parallel: DataParallel = DataParallel()
    ) throws -> TrainingSummary {
        let options = TrainerOptions(
            outputDirectory: output ?? config.run.output.dir, resumeFrom: resume, stopAfterEpoch: stopAfterEpoch, progress: progress,
            parallel: parallel, resetOptimizer: resetOptimizer)
        switch config {
        case .segmentation(let c):
            let task = try SegmentationTask(config: c)
            let summary = try train(task, config: config, options: options)
            if options.parallel.isRoot {
                try PostprocessingPlan.decideAfterTraining(task, output: options.outputDirectory, progress: options.progress)
            }
            return summary
        case .registration(let c):
            let task = try RegistrationTask(config: c, cacheFolder: options.prealignmentCache, log: options.rootNote)
            return try train(task, config: config, options: options, resolvedFile: "registration.yaml")
        case .joint(let c):
            let task = try JointTask(config: c, cacheFolder: options.prealignmentCache, log: options.rootNote)
            return try train(task, config: config, options: options, resolvedFile: "joint.yaml")
        }
    }

    /// The shared part: the task's overview line, the trainer (which restores a checkpoint and
    /// checks it against the config), the whole resolved config beside `config.yaml` when the
    /// task has sections of its own, then the epochs.
    static func train<Task: TrainingTask>(
        _ task: Task, config: TaskConfig, options: TrainerOptions, resolvedFile: String? = nil
    ) throws -> TrainingSummary {
        options.progress.note(task.overview)
        let trainer = try Trainer(task: task, config: config.run, options: options)
        // Held from before the first file is written until the run ends (`Trainer.run` takes it
        // again, as the same holder).
        var lock: RunFolderLock?
        defer { lock?.release() }
        if options.parallel.isRoot { lock = try Trainer<Task>.lockRunFolder(options.outputDirectory) }
        if let resolvedFile, options.parallel.isRoot {
            let dir = options.outputDirectory
            do {
                try config.yaml.write(toFile: dir + "/" + resolvedFile, atomically: true, encoding: .utf8)
            } catch {
                throw MorphoTrainError.output(path: dir, message: "cannot write \(resolvedFile) (\(error.localizedDescription))")
            }
        }
        return try trainer.run()
    }
}

extension TrainerOptions {
    /// Where a registration run keeps its pre-alignment maps (`Prealignment`): `prealign/` in
    /// the run folder, so a resumed run reads them.
    var prealignmentCache: String { outputDirectory + "/prealign" }

    /// `progress.note` on the root rank, nothing on the others (every rank loads the data).
    var rootNote: (String) -> Void {
        let progress = self.progress, root = parallel.isRoot
        return { line in if root { progress.note(line) } }
    }
}
