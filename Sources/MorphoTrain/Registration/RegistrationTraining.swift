import Foundation
import MorphoDistributed
import MorphoIO
import MorphoNN
import MorphoTensor

/// Training a registration network with the shared `Trainer`, and using the result.
public enum RegistrationTraining {
    /// The checkpoint metadata key under which registration checkpoints carry their resolved
    /// `registration:` section (`TrainingTask.checkpointMetadata`; the shared `Checkpoint` stores
    /// the `RunConfig` part), so that `morphoseg register --model` needs nothing else.
    public static let metadataKey = "registration"

    /// Trains `config` into `output` (default `config.run.output.dir`), resuming from `resume` if
    /// given. The run folder gets everything the `Trainer` writes, plus `registration.yaml` (the
    /// whole resolved config, for reading and for `--config` when resuming). With several ranks
    /// (`parallel`), rank 0 alone writes.
    public static func run(
        config: RegistrationRunConfig, output: String? = nil, resume: String? = nil, stopAfterEpoch: Int? = nil,
        progress: ProgressReporter = .automatic(), parallel: DataParallel = DataParallel()
    ) throws -> TrainingSummary {
        let dir = output ?? config.run.output.dir
        let task = try RegistrationTask(config: config)
        let d = task.dataset
        let source = d.mode == .atlas || d.mode == .listed
            ? "\(d.pairs.count) training pairs" : "\(d.images.count) training images (\(d.mode.rawValue) pairs)"
        progress.note("\(source), \(d.validation.count) validation pairs on a \(d.shape.map(String.init).joined(separator: "×")) grid; "
            + "DisplacementNet with \(task.network.parameterCount) parameters")
        let trainer = try Trainer(
            task: task, config: config.run,
            options: TrainerOptions(outputDirectory: dir, resumeFrom: resume, stopAfterEpoch: stopAfterEpoch, progress: progress,
                                    parallel: parallel))
        if parallel.isRoot {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try config.yaml.write(toFile: dir + "/registration.yaml", atomically: true, encoding: .utf8)
        }
        return try trainer.run()
    }
}

/// A trained registration network ready to register pairs: the `DisplacementNet` of a
/// checkpoint and the preprocessing its run used.
public final class RegistrationModel: @unchecked Sendable {
    public let config: RegistrationRunConfig
    public let network: DisplacementNet
    public let path: String

    /// Reads a checkpoint written by a registration run.
    ///
    /// - Throws: `MorphoIOError` / `MorphoTrainError.checkpoint` for unreadable or foreign files,
    ///   `MorphoTrainError.modelMismatch` when the checkpoint is not a registration model or has
    ///   no registration section in its metadata.
    public static func load(_ path: String) throws -> RegistrationModel {
        let checkpoint = try Checkpoint.read(path)
        if checkpoint.task == .joint { return try JointTraining.registrationModel(path) }  // its `reg.` network
        guard checkpoint.task == .registration else {
            throw MorphoTrainError.modelMismatch(path: path, reason: "a \(checkpoint.task.rawValue) checkpoint, not a registration model")
        }
        guard let yaml = checkpoint.extraMetadata[RegistrationTraining.metadataKey] else {
            throw MorphoTrainError.modelMismatch(path: path, reason: "no registration section in the checkpoint metadata")
        }
        var phantom = false
        if case .phantom = checkpoint.config.data.source { phantom = true }
        let root = try ConfigSection(yaml: yaml, file: "\(path) (embedded registration config)")
        let registration = try RegistrationConfig(root.section("registration"), phantom: phantom)
        let config = RegistrationRunConfig(run: checkpoint.config, registration: registration)
        let network = makeDisplacementNet(config)
        try checkpoint.load(into: network, path: path)
        network.setTraining(false)
        return RegistrationModel(config: config, network: network, path: path)
    }

    init(config: RegistrationRunConfig, network: DisplacementNet, path: String) {
        self.config = config
        self.network = network
        self.path = path
    }

    /// The field `[1, nd, spatial…]` (voxels of the fixed grid) the network predicts for `pair`,
    /// after the run's preprocessing (normalisation, target spacing, padding to the network's
    /// size multiple); the field is cropped back and, if the run resampled, resized to the fixed
    /// grid with its values rescaled.
    ///
    /// - Throws: `MorphoTrainError.modelMismatch` when the pair's dimensionality is not the model's.
    public func predict(_ pair: RegistrationPair) throws -> Tensor {
        let dims = config.run.model.unet.dims
        guard (dims == 2) == pair.fixed.is2D else {
            throw MorphoTrainError.modelMismatch(path: path, reason: "a \(dims)D model cannot register \(pair.fixed.is2D ? "2D" : "3D") images")
        }
        let pre = Preprocessor(
            normalization: config.run.data.normalization, targetSpacing: config.run.data.spacing, dims: dims, sliceAxis: .z,
            multiple: config.registration.network.sizeMultiple, minimumSize: [1, 1, 1])
        let fixed = pre.prepareImage(VoxelArray(pair.fixed))
        let moving = pre.prepareImage(VoxelArray(pair.moving))
        let shape = fixed.array.shape
        let spatial = dims == 3 ? shape : Array(shape.dropFirst())
        let flow: Tensor = withoutGradients {
            network(
                moving: Tensor(shape: [1, 1] + spatial, data: moving.array.data),
                fixed: Tensor(shape: [1, 1] + spatial, data: fixed.array.data))
        }
        let cropped = fixed.unpadded(VoxelArray(data: flow.scalars, channels: dims, shape: shape, spacing: fixed.array.spacing))
        let croppedSpatial = dims == 3 ? cropped.shape : Array(cropped.shape.dropFirst())
        let field = Tensor(shape: [1, dims] + croppedSpatial, data: cropped.data)
        let rawSpatial = dims == 3 ? pair.fixed.spatialShape : [pair.fixed.height, pair.fixed.width]
        return croppedSpatial == rawSpatial ? field : withoutGradients { resizeDisplacement(field, to: rawSpatial) }
    }
}
