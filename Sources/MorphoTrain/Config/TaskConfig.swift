import Foundation
import MorphoIO

// Placeholder until the config branch lands (it replaces this file).
public enum TaskConfig: Equatable, Sendable {
    case segmentation(RunConfig)
    case registration(RegistrationRunConfig)
    case joint(JointRunConfig)

    public static func load(_ path: String) throws -> TaskConfig {
        switch TaskKind.declared(in: path) {
        case .registration: return .registration(try RegistrationRunConfig.load(path))
        case .joint: return .joint(try JointRunConfig.load(path))
        default: return .segmentation(try RunConfig.load(path))
        }
    }

    public init(checkpoint: Checkpoint, path: String) throws {
        switch checkpoint.task {
        case .joint: self = .joint(try JointRunConfig.load(checkpoint: path))
        case .registration:
            guard let yaml = checkpoint.extraMetadata[Checkpoint.registrationSectionKey] else {
                throw MorphoTrainError.checkpoint(path: path, message: "no registration section")
            }
            let root = try ConfigSection(yaml: yaml, file: path)
            var phantom = false
            if case .phantom = checkpoint.config.data.source { phantom = true }
            self = .registration(RegistrationRunConfig(run: checkpoint.config, registration: try RegistrationConfig(root.section("registration"), phantom: phantom)))
        case .segmentation: self = .segmentation(checkpoint.config)
        }
    }

    public var run: RunConfig {
        switch self {
        case .segmentation(let c): c
        case .registration(let c): c.run
        case .joint(let c): c.run
        }
    }

    public var yaml: String {
        switch self {
        case .segmentation(let c): c.yaml
        case .registration(let c): c.yaml
        case .joint(let c): c.yaml
        }
    }
}
