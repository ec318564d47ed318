import Foundation
import MorphoIO
import MorphoNN
import MorphoTensor

/// Everything needed to use a trained network or to continue its training, in one safetensors
/// file that Python's `safetensors` reads too.
///
/// Tensors (float32): `model.<dotted name>` for every parameter and buffer of the network
/// (`Module.stateDictionary()`), `optimizer.<name>` for the optimiser state
/// (`Optimizer.stateDictionary()`: moments and step counts per parameter). `__metadata__` (strings):
/// `format` = `morphoseg-checkpoint`, `version` = `1`, `task`, `epoch` (completed epochs), `rng`
/// (the trainer's generator, four decimal words), `best_score`, `best_epoch`, `stale_validations`
/// (early-stopping counter), `input_channels`, `classes`, and `config` — the resolved YAML config
/// the run used — plus any task-specific entries (`extraMetadata`).
public struct Checkpoint: Sendable {
    public static let format = "morphoseg-checkpoint"

    public var config: RunConfig
    /// The resolved YAML text (exactly what is stored).
    public var configYAML: String
    public var task: TaskKind
    public var epoch: Int
    public var rngState: [UInt64]
    public var bestScore: Double
    public var bestEpoch: Int
    public var staleValidations: Int
    public var model: [String: Tensor]
    public var optimizer: [String: Tensor]
    /// Metadata entries beyond the ones above (a task's own settings, see
    /// `TrainingTask.checkpointMetadata`).
    public var extraMetadata: [String: String] = [:]

    /// The metadata keys `write(to:)` sets itself.
    public static let reservedKeys: Set<String> = [
        "format", "version", "task", "epoch", "rng", "best_score", "best_epoch", "stale_validations", "input_channels",
        "classes", "config",
    ]

    public init(
        config: RunConfig, epoch: Int, rngState: [UInt64], bestScore: Double, bestEpoch: Int, staleValidations: Int,
        model: [(String, Tensor)], optimizer: [(String, Tensor)]
    ) {
        self.config = config
        configYAML = config.yaml
        task = config.model.kind
        self.epoch = epoch
        self.rngState = rngState
        self.bestScore = bestScore
        self.bestEpoch = bestEpoch
        self.staleValidations = staleValidations
        self.model = Dictionary(model, uniquingKeysWith: { a, _ in a })
        self.optimizer = Dictionary(optimizer, uniquingKeysWith: { a, _ in a })
    }

    /// Writes the checkpoint atomically (a temporary file renamed over `path`).
    public func write(to path: String) throws {
        var tensors: [String: SafeTensor] = [:]
        for (name, t) in model { tensors["model.\(name)"] = SafeTensor(t.scalars, shape: t.shape) }
        for (name, t) in optimizer { tensors["optimizer.\(name)"] = SafeTensor(t.scalars, shape: t.shape) }
        var metadata = extraMetadata.filter { !Self.reservedKeys.contains($0.key) }
        let own: [String: String] = [
            "format": Self.format, "version": "1", "task": task.rawValue, "epoch": String(epoch),
            "rng": rngState.map(String.init).joined(separator: ","),
            "best_score": bestScore.isFinite ? "\(bestScore)" : "-inf", "best_epoch": String(bestEpoch),
            "stale_validations": String(staleValidations), "input_channels": String(config.inputChannels),
            "classes": String(config.model.unet.classes), "config": configYAML,
        ]
        metadata.merge(own) { _, mine in mine }
        try SafeTensors.write(SafeTensorsFile(tensors: tensors, metadata: metadata), to: path)
    }

    /// Reads and checks a checkpoint written by `write(to:)`: its metadata `task`, `classes` and
    /// `input_channels` must agree with its embedded config, and every tensor must hold finite
    /// values (NaN weights segment everything as background without a word).
    ///
    /// - Throws: `MorphoIOError` (missing or malformed file), `MorphoTrainError.checkpoint` when the
    ///   file is not a MorphoSeg checkpoint, its metadata is incomplete or disagrees with its
    ///   config, or a tensor is not finite; `.config` errors of the embedded config (named by the
    ///   checkpoint path).
    public static func read(_ path: String) throws -> Checkpoint {
        let file = try SafeTensors.read(path)
        let meta = file.metadata
        guard meta["format"] == format else {
            throw MorphoTrainError.checkpoint(path: path, message: "not a MorphoSeg checkpoint (no format: \(format) in the metadata)")
        }
        func field(_ key: String) throws -> String {
            guard let v = meta[key] else { throw MorphoTrainError.checkpoint(path: path, message: "metadata has no \(key)") }
            return v
        }
        func int(_ key: String) throws -> Int {
            guard let v = Int(try field(key)) else { throw MorphoTrainError.checkpoint(path: path, message: "metadata \(key) is not an integer") }
            return v
        }
        let yaml = try field("config")
        let config = try RunConfig(yaml: yaml, file: "\(path) (embedded config)")
        let words = try field("rng").split(separator: ",").compactMap { UInt64($0) }
        guard words.count == 4 else { throw MorphoTrainError.checkpoint(path: path, message: "metadata rng needs 4 words") }
        let stated: [(key: String, value: String)] = [
            ("task", config.model.kind.rawValue), ("classes", String(config.model.unet.classes)),
            ("input_channels", String(config.inputChannels)),
        ]
        for (key, value) in stated where try field(key) != value {
            throw MorphoTrainError.checkpoint(
                path: path, message: "metadata \(key) is \(meta[key]!) but its config says \(value); the file was altered or mixed up")
        }
        let best = try field("best_score")
        var model: [(String, Tensor)] = [], optimizer: [(String, Tensor)] = []
        for (name, t) in file.tensors {
            guard t.dtype == .F32 else {
                throw MorphoTrainError.checkpoint(path: path, message: "tensor \(name) is \(t.dtype.rawValue), expected F32")
            }
            let values = t.floats()
            let nonFinite = values.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
            guard nonFinite == 0 else {
                throw MorphoTrainError.checkpoint(path: path, message: "tensor \(name) holds \(nonFinite) NaN or infinite values")
            }
            let tensor = Tensor(shape: t.shape, data: values)
            if name.hasPrefix("model.") {
                model.append((String(name.dropFirst(6)), tensor))
            } else if name.hasPrefix("optimizer.") {
                optimizer.append((String(name.dropFirst(10)), tensor))
            } else {
                throw MorphoTrainError.checkpoint(path: path, message: "unexpected tensor \(name)")
            }
        }
        var c = Checkpoint(
            config: config, epoch: try int("epoch"), rngState: words, bestScore: best == "-inf" ? -.infinity : Double(best) ?? -.infinity,
            bestEpoch: try int("best_epoch"), staleValidations: try int("stale_validations"), model: model, optimizer: optimizer)
        c.configYAML = yaml
        c.extraMetadata = meta.filter { !reservedKeys.contains($0.key) }
        return c
    }

    /// Loads the weights into `module`: every tensor must have the shape of the parameter it
    /// replaces (the same count in another shape is another network).
    ///
    /// - Throws: `MorphoTrainError.checkpoint` naming the parameter that is missing or mis-shaped.
    public func load(into module: any Module, path: String) throws {
        for (name, parameter) in module.namedState {
            if let stored = model[name], stored.shape != parameter.shape {
                throw MorphoTrainError.checkpoint(
                    path: path, message: "tensor model.\(name) has shape \(stored.shape), the network's parameter has \(parameter.shape)")
            }
        }
        do {
            try module.load(model)
        } catch {
            throw MorphoTrainError.checkpoint(path: path, message: "\(error)")
        }
    }
}
