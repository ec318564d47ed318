import Foundation
import MorphoDistributed
import MorphoIO
import MorphoNN
import MorphoTensor

/// Training a joint segmentation + registration run with the shared `Trainer`, and using its
/// checkpoints with the segmentation and registration loaders.
public enum JointTraining {
    /// The metadata key under which joint checkpoints carry their `registration:` and `joint:`
    /// sections (the shared `Checkpoint` stores the `RunConfig` part).
    public static let metadataKey = "joint"

    /// Trains `config` into `output` (default `config.run.output.dir`), resuming from `resume` if
    /// given. The run folder gets everything the `Trainer` writes plus `joint.yaml` (the whole
    /// resolved config); `best.safetensors` and `last.safetensors` also carry the extra sections in
    /// their metadata (`JointTask.checkpointMetadata`: under `joint`, and the registration section under
    /// `registration`) so that
    /// `morphoseg segment` and `morphoseg register --model` need nothing else. With several
    /// ranks in `parallel` (`mpirun`) each trains its shard of every batch (see `JointTask`) and
    /// rank 0 alone writes the run folder.
    public static func run(
        config: JointRunConfig, output: String? = nil, resume: String? = nil, stopAfterEpoch: Int? = nil,
        progress: ProgressReporter = .automatic(), parallel: DataParallel = DataParallel()
    ) throws -> TrainingSummary {
        let dir = output ?? config.run.output.dir
        let task = try JointTask(config: config)
        let d = task.dataset
        let labelled = d.images.filter { $0.labels != nil }.count
        progress.note("\(d.images.count) training images (\(labelled) labelled, \(d.mode.rawValue) pairs), \(d.validation.count) validation pairs "
            + "on a \(d.shape.map(String.init).joined(separator: "×")) grid; U-Net \(task.network.segmentation.parameterCount) + "
            + "DisplacementNet \(task.network.registration.parameterCount) parameters; \(config.joint.strategy.rawValue) strategy")
        let trainer = try Trainer(
            task: task, config: config.run,
            options: TrainerOptions(outputDirectory: dir, resumeFrom: resume, stopAfterEpoch: stopAfterEpoch, progress: progress,
                                    parallel: parallel))
        if parallel.isRoot {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try config.yaml.write(toFile: dir + "/joint.yaml", atomically: true, encoding: .utf8)
        }
        return try trainer.run()
    }

    /// What `morphoseg train` runs for a joint config or checkpoint; nil when neither is joint
    /// (the caller then trains as before).
    ///
    /// - Parameters:
    ///   - configPath: `--config`.
    ///   - output: `--output` (default: the config's `output.dir`).
    ///   - resume: `--resume` (continue from `<output>/last.safetensors`).
    ///   - resumeFrom: `--resume-from`.
    ///   - progress, parallel: as for `run`.
    public static func trainIfJoint(
        configPath: String?, output: String?, resume: Bool, resumeFrom: String?, stopAfterEpoch: Int?,
        progress: ProgressReporter = .automatic(), parallel: DataParallel = DataParallel()
    ) throws -> (summary: TrainingSummary, output: String)? {
        var config: JointRunConfig
        var checkpoint = resumeFrom
        if let resumeFrom {
            guard try Checkpoint.read(resumeFrom).task == .joint else { return nil }
            config = try JointRunConfig.load(checkpoint: resumeFrom)
            if let configPath, try JointRunConfig.load(configPath).yaml != config.yaml {
                throw MorphoTrainError.config(file: configPath, key: "", message: "differs from the config saved in \(resumeFrom); omit --config to resume")
            }
        } else if let configPath, JointRunConfig.declaresJoint(configPath) {
            config = try JointRunConfig.load(configPath)
        } else {
            return nil
        }
        let dir = output ?? config.run.output.dir
        if resume {
            checkpoint = dir + "/last.safetensors"
            config = try JointRunConfig.load(checkpoint: checkpoint!)
        }
        return (try run(config: config, output: dir, resume: checkpoint, stopAfterEpoch: stopAfterEpoch, progress: progress, parallel: parallel),
                dir)
    }

    /// The registration network of a joint checkpoint, ready for `RegistrationModel.predict`.
    public static func registrationModel(_ path: String) throws -> RegistrationModel {
        let config = try JointRunConfig.load(checkpoint: path)
        let network = makeDisplacementNet(config.registrationRun)
        try Checkpoint.read(path).registrationPart().load(into: network, path: path)
        network.setTraining(false)
        return RegistrationModel(config: config.registrationRun, network: network, path: path)
    }
}

extension Checkpoint {
    /// The checkpoint restricted to the tensors under `prefix` (prefix removed), marked as `task`.
    func part(_ prefix: String, as task: TaskKind) -> Checkpoint {
        var c = self
        c.model = Dictionary(uniqueKeysWithValues: model.compactMap { name, t in
            name.hasPrefix(prefix) ? (String(name.dropFirst(prefix.count)), t) : nil
        })
        c.optimizer = [:]
        c.task = task
        return c
    }

    /// A joint checkpoint's U-Net as a segmentation checkpoint (`seg.` tensors); any other
    /// checkpoint unchanged. What `Segmenter` loads.
    public func segmentationPart() -> Checkpoint {
        task == .joint ? part(JointModel.segmentationPrefix, as: .segmentation) : self
    }

    /// A joint checkpoint's displacement network as a registration checkpoint (`reg.` tensors);
    /// any other checkpoint unchanged.
    public func registrationPart() -> Checkpoint {
        task == .joint ? part(JointModel.registrationPrefix, as: .registration) : self
    }
}
