import Foundation

/// A run config of any task, from one read of one YAML file: the file's bytes are read once,
/// parsed once into the root `ConfigSection`, and `model.kind` picks the config type.
///
/// The same three configs come back from a checkpoint: the shared sections are the resolved YAML
/// the checkpoint embeds (`Checkpoint.config`), the task's own sections are in its metadata
/// (`registration` for registration runs, `joint` for joint runs).
public enum TaskConfig: Equatable, Sendable {
    case segmentation(RunConfig)
    case registration(RegistrationRunConfig)
    case joint(JointRunConfig)

    /// Reads and checks the YAML config file at `path` (read once).
    ///
    /// - Throws: `MorphoTrainError.fileNotFound` (role "config"), `.configSyntax`, `.config` with
    ///   the file and key path of the first problem.
    public static func load(_ path: String) throws -> TaskConfig {
        try TaskConfig(yaml: ConfigFile.text(at: path), file: path, defaultName: ConfigFile.defaultName(path))
    }

    /// Parses YAML text. `file` appears in errors; `defaultName` is used when there is no `name:`.
    public init(yaml: String, file: String = "<config>", defaultName: String = "run") throws {
        try self.init(root: ConfigSection(yaml: yaml, file: file), defaultName: defaultName)
    }

    /// Reads the config of the task `model.kind` names (segmentation when absent) from `root`.
    public init(root: ConfigSection, defaultName: String) throws {
        switch try root.section("model").choice("kind", default: TaskKind.segmentation) {
        case .segmentation: self = .segmentation(try RunConfig(root: root, defaultName: defaultName))
        case .registration: self = .registration(try RegistrationRunConfig(root: root, defaultName: defaultName))
        case .joint: self = .joint(try JointRunConfig(root: root, defaultName: defaultName))
        }
    }

    /// The config of the checkpoint read from `path`: its embedded `RunConfig` plus the task's
    /// sections from its metadata. A joint checkpoint without them falls back to `joint.yaml`
    /// beside it (what the first joint runs wrote).
    ///
    /// - Throws: `MorphoTrainError.modelMismatch` for a registration checkpoint without its
    ///   section, `MorphoTrainError.checkpoint` for a joint one, `.config` errors of the sections
    ///   (named by the checkpoint path).
    public init(checkpoint: Checkpoint, path: String) throws {
        let run = checkpoint.config
        var phantom = false
        if case .phantom = run.data.source { phantom = true }
        switch checkpoint.task {
        case .segmentation:
            self = .segmentation(run)
        case .registration:
            guard let yaml = checkpoint.extraMetadata[Checkpoint.registrationSectionKey] else {
                throw MorphoTrainError.modelMismatch(path: path, reason: "no registration section in the checkpoint metadata")
            }
            let root = try ConfigSection(yaml: yaml, file: "\(path) (embedded registration config)")
            self = .registration(RegistrationRunConfig(run: run, registration: try RegistrationConfig(root.section("registration"), phantom: phantom)))
        case .joint:
            if let yaml = checkpoint.extraMetadata[Checkpoint.jointSectionKey] {
                let root = try ConfigSection(yaml: yaml, file: "\(path) (embedded joint config)")
                self = .joint(JointRunConfig(
                    run: run, registration: try RegistrationConfig(root.section("registration"), phantom: phantom),
                    joint: try JointConfig(root.section("joint"))))
                return
            }
            let sidecar = (path as NSString).deletingLastPathComponent.appending("/joint.yaml")
            guard FileManager.default.fileExists(atPath: sidecar) else {
                throw MorphoTrainError.checkpoint(path: path, message: "no joint settings in the checkpoint and no \(sidecar)")
            }
            let full = try JointRunConfig(
                yaml: ConfigFile.text(at: sidecar), file: sidecar, defaultName: ConfigFile.defaultName(sidecar))
            self = .joint(JointRunConfig(run: run, registration: full.registration, joint: full.joint))
        }
    }

    /// The task `model.kind` declares.
    public var kind: TaskKind {
        switch self {
        case .segmentation: .segmentation
        case .registration: .registration
        case .joint: .joint
        }
    }

    /// The shared sections (model, data, loss, training, inference, output).
    /// This config with `data.nan_as` set (`morphoseg train --nan-as V`).
    public func settingNaNAs(_ value: Double) -> TaskConfig {
        switch self {
        case .segmentation(var c):
            c.data.nanAs = value
            return .segmentation(c)
        case .registration(var c):
            c.run.data.nanAs = value
            return .registration(c)
        case .joint(var c):
            c.run.data.nanAs = value
            return .joint(c)
        }
    }

    public var run: RunConfig {
        switch self {
        case .segmentation(let c): c
        case .registration(let c): c.run
        case .joint(let c): c.run
        }
    }

    /// The whole resolved config as YAML, every key with the value the run uses: the shared
    /// sections, then the task's own (`registration:`, `joint:`). A segmentation run saves it as
    /// `config.yaml`; a registration run as `registration.yaml`, a joint one as `joint.yaml`
    /// (their `config.yaml` is `run.yaml`, the shared sections that checkpoints embed).
    public var yaml: String {
        switch self {
        case .segmentation(let c): c.yaml
        case .registration(let c): c.yaml
        case .joint(let c): c.yaml
        }
    }
}
