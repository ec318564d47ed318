import MorphoDistributed

/// Training from a config, whatever the task.
public enum TrainingRun {
    /// Trains `config` into `output` (default `config.output.dir`), resuming from `resume` if given,
    /// in one process or over the ranks of `parallel`.
    ///
    /// - Throws: `MorphoTrainError` / `MorphoIOError` with the file or key at fault.
    public static func run(
        config: RunConfig, output: String? = nil, resume: String? = nil, stopAfterEpoch: Int? = nil,
        progress: ProgressReporter = .automatic(), parallel: DataParallel = DataParallel()
    ) throws -> TrainingSummary {
        switch config.model.kind {
        case .segmentation:
            let task = try SegmentationTask(config: config)
            progress.note("\(task.dataset.training.count) training and \(task.dataset.validation.count) validation subjects; "
                + "U-Net with \(task.network.parameterCount) parameters")
            let trainer = try Trainer(
                task: task, config: config,
                options: TrainerOptions(outputDirectory: output ?? config.output.dir, resumeFrom: resume, stopAfterEpoch: stopAfterEpoch,
                                        progress: progress, parallel: parallel))
            return try trainer.run()
        case .registration, .joint:
            throw MorphoTrainError.config(
                file: config.name, key: "model.kind", message: "\(config.model.kind.rawValue) training is not available in this build")
        }
    }
}
