import Foundation
import MorphoDistributed
import MorphoIO
import MorphoLosses
import MorphoNN
import MorphoTensor

/// How a `Trainer` runs, beyond what the config says.
public struct TrainerOptions {
    /// The run folder: `config.yaml`, `metrics.jsonl`, `best.safetensors`, `last.safetensors`,
    /// `curves.png`, `overlay.png`, `report.html`.
    public var outputDirectory: String
    /// A checkpoint to continue from (usually `<output>/last.safetensors`).
    public var resumeFrom: String?
    /// Stop after this many completed epochs (as if interrupted); nil runs to the end.
    public var stopAfterEpoch: Int?
    public var progress: ProgressReporter
    /// The processes sharing the run (`mpirun -np N`): one by default. Rank 0 writes the files.
    public var parallel: DataParallel
    /// Resume from a checkpoint that has no optimiser state, with fresh optimiser moments
    /// (`--reset-optimizer`); without it such a resume is refused, since it would not continue
    /// the run exactly.
    public var resetOptimizer: Bool

    public init(outputDirectory: String, resumeFrom: String? = nil, stopAfterEpoch: Int? = nil, progress: ProgressReporter = .automatic(),
                parallel: DataParallel = DataParallel(), resetOptimizer: Bool = false) {
        self.outputDirectory = outputDirectory
        self.resumeFrom = resumeFrom
        self.stopAfterEpoch = stopAfterEpoch
        self.progress = progress
        self.parallel = parallel
        self.resetOptimizer = resetOptimizer
    }
}

/// What a finished (or stopped) run reached.
public struct TrainingSummary: Sendable {
    /// Completed epochs.
    public var epochs: Int
    public var bestScore: Double
    public var bestEpoch: Int
    public var stoppedEarly: Bool
    public var history: [EpochRecord]
    public var seconds: Double
}

/// The training loop shared by every task. Per epoch e (0-based):
///
/// 1. learning rate from `training.lr_schedule`, a fresh batch stream seeded from the trainer's
///    generator (so resuming restores the data order with the generator state);
/// 2. per step: `task.loss` (weights of the terms from the loss schedule at epoch e), a non-finite
///    loss or gradient norm stops the run with `MorphoTrainError.nonFiniteLoss` (the last good
///    checkpoint stays), `backward()`, global-norm clipping, optimiser step;
/// 3. every `validate_every` epochs and after the last: `task.validate()`, best checkpoint when
///    the score improves, early stopping after `patience` validations without improvement;
/// 4. a `metrics.jsonl` line, `last.safetensors`, the plots, and after a validation or the last
///    epoch `report.html` (`RunReport`).
///
/// Batches are made `data.prefetch` ahead on `data.threads` background threads.
public final class Trainer<Task: TrainingTask> {
    public let task: Task
    public let config: RunConfig
    public let options: TrainerOptions
    /// The one training step (optimiser, clipping, all-reduce) every batch goes through.
    public let trainingStep: TrainingStep
    public var optimizer: any Optimizer { trainingStep.optimizer }

    private var rng: RandomGenerator
    private var completedEpochs = 0
    private var bestScore = -Double.infinity
    private var bestEpoch = 0
    private var staleValidations = 0
    private var history: [EpochRecord] = []
    /// The latest validation's per-case rows (one process, tasks that name their cases).
    private var latestCases: ValidationCases?
    /// `metrics.jsonl` lines of `history`, verbatim (re-encoding parsed numbers could change digits).
    private var logLines: [String] = []

    var metricsPath: String { options.outputDirectory + "/metrics.jsonl" }
    public var lastCheckpointPath: String { options.outputDirectory + "/last.safetensors" }
    public var bestCheckpointPath: String { options.outputDirectory + "/best.safetensors" }

    /// Builds the optimiser the config names and, when resuming, restores weights, optimiser
    /// state, epoch, generator and early-stopping state from the checkpoint.
    public init(task: Task, config: RunConfig, options: TrainerOptions) throws {
        self.task = task
        self.config = config
        self.options = options
        trainingStep = TrainingStep(model: task.model, training: config.training, parallel: options.parallel)
        rng = Self.seedGenerator(config)
        if let path = options.resumeFrom { try restore(path) }
        let parallel = options.parallel
        if parallel.size > 1 {
            guard task.makeShard != nil else {
                throw MorphoTrainError.config(
                    file: config.name, key: "model.kind", message: "\(config.model.kind.rawValue) training cannot be split over MPI ranks yet")
            }
            guard config.training.batchSize >= parallel.size else {
                throw MorphoTrainError.config(
                    file: config.name, key: "training.batch_size",
                    message: "\(config.training.batchSize) samples cannot be shared out over \(parallel.size) MPI ranks; use at least \(parallel.size) or fewer ranks")
            }
        }
        // Every rank starts from rank 0's weights (they agree anyway: same seed or checkpoint).
        parallel.synchronize(task.model)
    }

    /// The generator of a fresh run that each epoch's batch-stream seed is drawn from (one
    /// `next()` per epoch, before its batches); checkpoints carry its state.
    static func seedGenerator(_ config: RunConfig) -> RandomGenerator {
        SeedStream.generator(seed: config.data.seed, 0x5452_4149)
    }

    private func restore(_ path: String) throws {
        let ckpt = try Checkpoint.read(path)
        // Re-resolved, so that a config saved by an older version (e.g. a registration run's
        // `model.unet`, now `model.network`) matches the same config read today.
        guard ckpt.config.yaml == config.yaml else {
            throw MorphoTrainError.checkpoint(
                path: path, message: "was trained with a different config; resume with the config saved in it")
        }
        try ckpt.load(into: task.model, path: path)
        if ckpt.optimizer.isEmpty && ckpt.epoch > 0 && !options.resetOptimizer {
            throw MorphoTrainError.checkpoint(
                path: path,
                message: "has no optimizer state, so the run cannot continue exactly; give --reset-optimizer to resume with fresh optimizer moments")
        }
        do {
            try optimizer.loadState(ckpt.optimizer)
        } catch {
            throw MorphoTrainError.checkpoint(path: path, message: "\(error)")
        }
        rng = RandomGenerator(stateWords: ckpt.rngState)
        completedEpochs = ckpt.epoch
        bestScore = ckpt.bestScore
        bestEpoch = ckpt.bestEpoch
        staleValidations = ckpt.staleValidations
        // Keep the log of the epochs the checkpoint covers; later lines belong to a lost future.
        if let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) {
            for line in text.split(separator: "\n").map(String.init) {
                guard let record = EpochRecord(json: line), record.epoch <= ckpt.epoch else { continue }
                history.append(record)
                logLines.append(line)
            }
        }
    }

    /// Runs the remaining epochs.
    ///
    /// - Throws: `MorphoTrainError.nonFiniteLoss`, `.output` (run folder not writable), I/O errors.
    ///
    /// With several ranks (`options.parallel`), each computes its share of every global batch, the
    /// gradients and losses are averaged in one all-reduce per step (so a non-finite loss stops
    /// all ranks at the same step), validation is shared out by subject, and rank 0 alone writes
    /// the run folder.
    public func run() throws -> TrainingSummary {
        let start = Date()
        let parallel = options.parallel
        var lock: RunFolderLock?
        if parallel.isRoot {
            lock = try Self.lockRunFolder(options.outputDirectory)
            try prepareOutput()
        }
        defer { lock?.release() }
        let epochs = config.training.epochs
        let steps = config.training.stepsPerEpoch
        let lastEpoch = min(epochs, options.stopAfterEpoch ?? epochs)
        var stoppedEarly = false
        if completedEpochs > 0 { options.progress.note("resuming after epoch \(completedEpochs) of \(epochs)") }
        while completedEpochs < lastEpoch {
            let epoch = completedEpochs
            let epochStart = Date()
            let lr = config.training.lrSchedule.rate(base: config.training.optimizer.lr, epoch: epoch, epochs: epochs)
            optimizer.learningRate = Float(lr)
            let seed = rng.next()
            let make = task.makeBatch, makeShard = task.makeShard, batchSize = config.training.batchSize
            let shards = (0..<steps).map { parallel.shard(step: $0, batchSize: batchSize) }
            let loader = Prefetcher(indices: 0..<steps, threads: config.data.threads, capacity: config.data.prefetch) { step in
                makeShard?(seed, step, shards[step]) ?? make(seed, step)
            }
            task.model.setTraining(true)
            var totalSum = 0.0
            var termSums: [Double] = []
            var termNames: [String] = []
            var termWeights: [Double] = []
            for step in 0..<steps {
                guard let batch = loader.next() else { break }
                // The global batch's loss and terms, after the step's all-reduce.
                let outcome: TrainingStep.Outcome
                do {
                    outcome = try trainingStep(
                        epoch: epoch, step: step, localSamples: makeShard == nil ? batchSize : shards[step].count,
                        globalSamples: batchSize) { task.loss(batch, epoch: epoch) }
                } catch {
                    loader.cancel()
                    throw error
                }
                let total = outcome.total, terms = outcome.terms
                if termNames.isEmpty {
                    termNames = terms.map(\.name)
                    termWeights = terms.map(\.weight)
                    termSums = Array(repeating: 0, count: termNames.count)
                }
                totalSum += Double(total)
                for (i, t) in terms.enumerated() where i < termSums.count { termSums[i] += Double(t.value) }
                let elapsed = Date().timeIntervalSince(epochStart)
                let perStep = elapsed / Double(step + 1)
                let remaining = perStep * Double(steps - step - 1) + perStep * Double(steps) * Double(lastEpoch - epoch - 1)
                options.progress.step(
                    epoch: epoch + 1, epochs: epochs, step: step + 1, steps: steps, loss: totalSum / Double(step + 1),
                    elapsed: elapsed, remaining: remaining)
            }
            completedEpochs += 1

            var validation: [(name: String, value: Double)] = []
            let validateNow = completedEpochs % config.training.validateEvery == 0 || completedEpochs == epochs
            // Batch-norm running statistics differ between ranks: validate and save their mean.
            parallel.averageBuffers(task.model)
            if validateNow {
                task.model.setTraining(false)
                validation = try withoutGradients { try validateOnAllRanks() }
                task.model.setTraining(true)
            }
            let record = EpochRecord(
                epoch: completedEpochs, learningRate: lr, scalars: task.epochScalars(epoch: epoch), loss: totalSum / Double(steps),
                terms: zip(termNames, termSums).map { ($0, $1 / Double(steps)) },
                weights: zip(termNames, termWeights).map { ($0, $1) }, validation: validation,
                seconds: Date().timeIntervalSince(epochStart))
            history.append(record)
            logLines.append(record.json)

            var improved = false
            if let score = validation.first(where: { $0.name == task.scoreName })?.value {
                if score > bestScore {
                    bestScore = score
                    bestEpoch = completedEpochs
                    staleValidations = 0
                    improved = true
                } else {
                    staleValidations += 1
                }
            } else if validateNow && validation.isEmpty {
                // No validation data: the latest weights are the best we know.
                bestEpoch = completedEpochs
                improved = true
            }
            if parallel.isRoot {
                try appendMetrics(record)
                let checkpoint = makeCheckpoint()
                // Best before last: `last` records the best epoch, so a kill between the two
                // renames leaves `best` at most one epoch ahead of `last` (and a resume from
                // `last` redoes that epoch, writing the same `best`), never `last` naming a best
                // whose weights were never written.
                if improved { try checkpoint.write(to: bestCheckpointPath) }
                try checkpoint.write(to: lastCheckpointPath)
                if config.output.plots {
                    try Plots.learningCurves(history).write(to: options.outputDirectory + "/curves.png")
                    if validateNow { try task.drawOverlay(to: options.outputDirectory + "/overlay.png") }
                }
                // report.html (RunReport): after each validation and at the end of the run.
                if let latestCases, validateNow { try latestCases.write(runFolder: options.outputDirectory) }
                if validateNow || completedEpochs == lastEpoch {
                    try RunReport.refresh(
                        runFolder: options.outputDirectory, config: config, scoreName: task.scoreName, history: history,
                        drawOverlay: config.output.plots ? nil : { try self.task.drawOverlay(to: $0) })
                }
            }
            options.progress.epochDone(Self.summaryLine(record, epochs: epochs, improved: improved))
            if config.training.patience > 0 && staleValidations >= config.training.patience {
                options.progress.note("early stop: no better \(task.scoreName) in \(staleValidations) validations (best \(bestScore) at epoch \(bestEpoch))")
                stoppedEarly = true
                break
            }
        }
        return TrainingSummary(
            epochs: completedEpochs, bestScore: bestScore, bestEpoch: bestEpoch, stoppedEarly: stoppedEarly, history: history,
            seconds: Date().timeIntervalSince(start))
    }

    /// `task.validate()` in one process. With several ranks: each validates its share of the
    /// subjects and the rows are averaged (`validateShard`), or, for a task without per-subject
    /// rows, rank 0 validates alone and sends the result to the others (early stopping must
    /// decide the same on every rank).
    private func validateOnAllRanks() throws -> [(name: String, value: Double)] {
        let parallel = options.parallel
        latestCases = nil
        if parallel.size == 1 {
            // The per-case rows, kept for report.html, and their mean (= `validate()`).
            let names = task.validationCaseNames
            if !names.isEmpty, let rows = try task.validateShard(rank: 0, size: 1),
                let cases = ValidationCases(epoch: completedEpochs, names: names, rows: rows) {
                latestCases = cases
                return parallel.meanOverSamples(rows)
            }
            return try task.validate()
        }
        if let rows = try task.validateShard(rank: parallel.rank, size: parallel.size) {
            let mean = parallel.meanOverSamples(rows)
            // The per-case rows gathered on every rank (a collective: every rank knows the same
            // case names), kept by rank 0 for report.html.
            let names = task.validationCaseNames
            if !names.isEmpty, !mean.isEmpty {
                let all = parallel.gatherRows(rows, count: names.count, names: mean.map(\.name))
                latestCases = ValidationCases(epoch: completedEpochs, names: names, rows: all)
            }
            return mean
        }
        return parallel.broadcastMetrics(parallel.isRoot ? try task.validate() : [])
    }

    private func makeCheckpoint() -> Checkpoint {
        var c = Checkpoint(
            config: config, epoch: completedEpochs, rngState: rng.stateWords, bestScore: bestScore, bestEpoch: bestEpoch,
            staleValidations: staleValidations, model: task.model.stateDictionary(), optimizer: optimizer.stateDictionary())
        c.extraMetadata = task.checkpointMetadata
        return c
    }

    /// Creates the run folder and takes its `RunFolderLock`, then removes the temporary files of
    /// writes a killed run left (checkpoint-sized, never renamed into place).
    ///
    /// - Throws: `MorphoTrainError.output` when the folder cannot be made or another run holds it.
    public static func lockRunFolder(_ dir: String) throws -> RunFolderLock {
        try OutputPaths.createFolder(dir)
        let lock = try RunFolderLock.acquire(dir)
        for stale in StaleTemporaryFiles.remove(in: dir) {
            FileHandle.standardError.write(Data("\(stale): removed (an unfinished write of an earlier run)\n".utf8))
        }
        return lock
    }

    /// Writes `config.yaml`, and (re)writes `metrics.jsonl` with the history kept so far.
    private func prepareOutput() throws {
        let dir = options.outputDirectory
        do {
            try config.yaml.write(toFile: dir + "/config.yaml", atomically: true, encoding: .utf8)
            let kept = logLines.map { $0 + "\n" }.joined()
            try kept.write(toFile: metricsPath, atomically: true, encoding: .utf8)
        } catch {
            throw MorphoTrainError.output(path: dir, message: "cannot write the run folder (\(error.localizedDescription))")
        }
    }

    private func appendMetrics(_ record: EpochRecord) throws {
        guard let handle = FileHandle(forWritingAtPath: metricsPath) else {
            throw MorphoTrainError.output(path: metricsPath, message: "cannot append")
        }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        handle.write(Data((record.json + "\n").utf8))
    }

    static func summaryLine(_ r: EpochRecord, epochs: Int, improved: Bool) -> String {
        var s = "epoch \(r.epoch)/\(epochs)  loss \(ProgressReporter.format(r.loss))"
        for t in r.terms { s += "  \(t.name) \(ProgressReporter.format(t.value))" }
        s += "  lr \(String(format: "%.2e", r.learningRate))"
        for (name, value) in r.validation where name == "dice_mean" || name.hasPrefix("dice.") {
            s += "  \(name) \(String(format: "%.4f", value))"
        }
        if improved && !r.validation.isEmpty { s += "  (best)" }
        s += "  \(ProgressReporter.duration(r.seconds))"
        return s
    }
}
