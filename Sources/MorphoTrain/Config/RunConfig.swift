import Foundation

/// A training run as a config file describes it, every default filled in. `Configs/README.md`
/// documents each key; this type is the single place those keys are read.
///
/// Sizes and spacings are listed in NIfTI axis order (x, y, z), like `pixdim`; relative paths are
/// relative to the current directory. Loading checks types, ranges, unknown keys and the
/// cross-field rules (strides vs channels, patch sizes vs the network's downsampling factor) and
/// fails with the key path of the first problem.
public struct RunConfig: Equatable, Sendable {
    /// Names the run and its default output folder `runs/<name>`; defaults to the file's stem.
    public var name: String
    public var model: ModelConfig
    public var data: DataConfig
    public var loss: LossConfig
    public var training: TrainingConfig
    public var inference: InferenceConfig
    public var output: OutputConfig

    /// Reads and checks a YAML config file.
    ///
    /// - Throws: `MorphoTrainError.fileNotFound` (role "config"), `.configSyntax`, `.config`.
    public static func load(_ path: String) throws -> RunConfig {
        try RunConfig(yaml: ConfigFile.text(at: path), file: path, defaultName: ConfigFile.defaultName(path))
    }

    /// Parses YAML text. `file` appears in errors; `defaultName` is used when there is no `name:`.
    public init(yaml: String, file: String = "<config>", defaultName: String = "run") throws {
        let root = try ConfigSection(yaml: yaml, file: file)
        try self.init(root: root, defaultName: defaultName)
    }

    /// Reads every section from `root` and rejects unknown keys.
    public init(root: ConfigSection, defaultName: String) throws {
        name = try root.string("name", default: defaultName)
        guard !name.isEmpty, !name.contains("/") else { throw root.error("name", "must be a non-empty name without '/'") }
        model = try ModelConfig(try root.section("model"))
        data = try DataConfig(try root.section("data"), model: model)
        loss = try LossConfig(try root.section("loss"), classes: model.unet.classes)
        training = try TrainingConfig(try root.section("training"))
        if let patch = data.patch.size, training.batchSize > ConfigBounds.batchVoxels / patch.reduce(1, *) {
            throw MorphoTrainError.config(
                file: root.file, key: "training.batch_size",
                message: "\(training.batchSize) patches of \(patch.reduce(1, *)) voxels exceed \(ConfigBounds.batchVoxels) voxels per batch")
        }
        inference = try InferenceConfig(try root.section("inference"), data: data, model: model)
        output = try OutputConfig(try root.section("output"), name: name)
        try root.finish()
    }

    /// The resolved config as a tree (every key, defaults filled).
    public var resolved: ConfigValue {
        .map([
            ("name", .string(name)),
            ("model", model.resolved),
            ("data", data.resolved),
            ("loss", loss.resolved),
            ("training", training.resolved),
            ("inference", inference.resolved),
            ("output", output.resolved),
        ])
    }

    /// The resolved config as YAML, what a run saves as `config.yaml`.
    public var yaml: String {
        "# Resolved MorphoSeg config: every key with the value the run used (see Configs/README.md).\n"
            + resolved.yaml()
    }

    /// Input channels of the network: the number of modalities (1 for a phantom).
    public var inputChannels: Int { data.modalities.count }
}

/// What is trained (`model.kind`). Registration and joint tasks reuse the same file layout;
/// `TaskConfig` reads a file of any kind.
public enum TaskKind: String, CaseIterable, Sendable {
    case segmentation, registration, joint
}
