import Foundation
import MorphoLosses
import MorphoNN

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
        guard FileManager.default.fileExists(atPath: path),
              let data = FileManager.default.contents(atPath: path) else {
            throw MorphoTrainError.fileNotFound(path: path, role: "config")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw MorphoTrainError.configSyntax(file: path, message: "not UTF-8 text")
        }
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return try RunConfig(yaml: text, file: path, defaultName: stem)
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

// MARK: - model

/// What is trained. Registration and joint tasks reuse the same file layout.
public enum TaskKind: String, CaseIterable, Sendable {
    case segmentation, registration, joint

    /// The `model.kind` a YAML config file declares; nil when the file cannot be read or has no
    /// valid kind (the full load of the config then reports exactly what is wrong).
    public static func declared(in path: String) -> TaskKind? {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8),
              let root = try? ConfigSection(yaml: text, file: path), let model = try? root.section("model"),
              let kind = try? model.string("kind") else { return nil }
        return TaskKind(rawValue: kind)
    }
}

public enum NormChoice: String, CaseIterable, Sendable { case instance, batch, none }
public enum ActivationChoice: String, CaseIterable, Sendable { case prelu, leaky_relu, relu }

/// `model:`.
public struct ModelConfig: Equatable, Sendable {
    public var kind: TaskKind
    public var unet: UNetConfig

    init(_ s: ConfigSection) throws {
        kind = try s.choice("kind", default: .segmentation)
        unet = try UNetConfig(try s.section("unet"))
        try s.finish()
    }

    var resolved: ConfigValue { .map([("kind", .string(kind.rawValue)), ("unet", unet.resolved)]) }
}

/// `model.unet:` — a U-Net with `channels.count` levels; level `i+1` is downsampled by
/// `strides[i]` along every spatial axis.
public struct UNetConfig: Equatable, Sendable {
    /// 2 (slices, `[N, C, H, W]`) or 3 (volumes, `[N, C, D, H, W]`).
    public var dims: Int
    /// Feature channels per level, e.g. `[16, 32, 64, 128]`.
    public var channels: [Int]
    /// Downsampling factor between consecutive levels (`channels.count - 1` entries).
    public var strides: [Int]
    public var norm: NormChoice
    public var activation: ActivationChoice
    /// Output classes including background (≥ 2).
    public var classes: Int

    /// Input sizes must be multiples of this (the product of the strides).
    public var sizeMultiple: Int { strides.reduce(1, *) }

    public init(dims: Int, channels: [Int], strides: [Int], norm: NormChoice, activation: ActivationChoice, classes: Int) {
        self.dims = dims
        self.channels = channels
        self.strides = strides
        self.norm = norm
        self.activation = activation
        self.classes = classes
    }

    init(_ s: ConfigSection) throws {
        dims = try s.int("dims", default: 2)
        guard dims == 2 || dims == 3 else { throw s.error("dims", "must be 2 or 3, got \(dims)") }
        channels = try s.ints("channels") ?? [16, 32, 64, 128]
        guard !channels.isEmpty, channels.allSatisfy({ $0 > 0 }) else {
            throw s.error("channels", "expected a list of positive channel counts")
        }
        strides = try s.ints("strides") ?? Array(repeating: 2, count: channels.count - 1)
        guard strides.count == channels.count - 1 else {
            throw s.error("strides", "needs \(channels.count - 1) entries (one fewer than channels), got \(strides.count)")
        }
        guard strides.allSatisfy({ $0 >= 1 }) else { throw s.error("strides", "entries must be at least 1") }
        norm = try s.choice("norm", default: .instance)
        activation = try s.choice("activation", default: .leaky_relu)
        classes = try s.int("classes", default: 2, min: 2)
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("dims", .int(dims)), ("channels", .ints(channels)), ("strides", .ints(strides)),
            ("norm", .string(norm.rawValue)), ("activation", .string(activation.rawValue)), ("classes", .int(classes)),
        ])
    }
}

// MARK: - data

public enum NormalizationKind: String, CaseIterable, Sendable { case zscore, percentile, none }
public enum SpatialAxis: String, CaseIterable, Sendable {
    case x, y, z
    /// Index in the `[D, H, W]` tensor layout.
    public var tensorAxis: Int { self == .z ? 0 : self == .y ? 1 : 2 }
}
public enum ValidationSplitKind: String, CaseIterable, Sendable { case subject, position }

/// Where the training pairs come from.
public enum DataSource: Equatable, Sendable {
    /// Synthetic volumes generated in memory (`data.phantom`).
    case phantom(PhantomConfig)
    /// A CSV file whose header names the columns: one per modality and `label` (and optionally
    /// `split` with values train/validation); paths relative to the manifest's folder.
    case manifest(String)
    /// One glob per modality and one for labels, paired by the text the wildcards matched.
    case globs(images: [String], labels: String)
}

/// `data:`.
public struct DataConfig: Equatable, Sendable {
    public var source: DataSource
    /// Channel names, in input-channel order.
    public var modalities: [String]
    public var validation: ValidationConfig
    public var normalization: NormalizationConfig
    /// Target voxel spacing in mm (x, y, z); nil keeps the files' spacing.
    public var spacing: [Double]?
    /// 2D networks: the axis slices are taken along.
    public var sliceAxis: SpatialAxis
    public var patch: PatchConfig
    public var augmentation: AugmentationConfig
    /// Seed of sampling, augmentation and the validation split.
    public var seed: UInt64
    /// Background threads producing batches, and how many batches they may run ahead.
    public var threads: Int
    public var prefetch: Int

    init(_ s: ConfigSection, model: ModelConfig) throws {
        let sources = ["phantom", "manifest", "images"].filter { s.contains($0) }
        guard sources.count == 1 else {
            throw MorphoTrainError.config(
                file: s.file, key: s.path,
                message: sources.isEmpty
                    ? "needs one of phantom, manifest or images (+ labels)"
                    : "takes only one of phantom, manifest, images; got \(sources.joined(separator: " and "))")
        }
        let dims = model.unet.dims
        switch sources[0] {
        case "phantom":
            source = .phantom(try PhantomConfig(try s.section("phantom"), dims: dims, classes: model.unet.classes))
            modalities = try s.strings("modalities") ?? ["image"]
            guard modalities.count == 1 else { throw s.error("modalities", "a phantom has one modality") }
        case "manifest":
            let path = try s.string("manifest")!
            source = .manifest(path)
            modalities = try s.strings("modalities") ?? ["image"]
        default:
            let labels = try s.string("labels")
            guard let labels else { throw s.error("labels", "a glob of label files is required with images") }
            let imagesNode = s.node("images")!
            if case .mapping = imagesNode {
                let section = try s.section("images")
                var names: [String] = [], globs: [String] = []
                for key in section.keys {
                    names.append(key)
                    globs.append(try section.string(key)!)
                }
                try section.finish()
                guard !names.isEmpty else { throw s.error("images", "expected at least one modality glob") }
                source = .globs(images: globs, labels: labels)
                modalities = names
                if try s.strings("modalities") != nil {
                    throw s.error("modalities", "not used when images maps modalities to globs")
                }
            } else {
                let glob = try s.string("images")!
                source = .globs(images: [glob], labels: labels)
                modalities = try s.strings("modalities") ?? ["image"]
                guard modalities.count == 1 else {
                    throw s.error("modalities", "one glob gives one modality; map modality names to globs under images")
                }
            }
        }
        guard Set(modalities).count == modalities.count, !modalities.contains("label"), !modalities.contains("split") else {
            throw s.error("modalities", "names must be distinct and not label or split")
        }
        validation = try ValidationConfig(try s.section("validation"))
        normalization = try NormalizationConfig(try s.section("normalization"))
        spacing = try s.doubles("spacing")
        if let sp = spacing {
            guard sp.count == 3 || (sp.count == 2 && dims == 2), sp.allSatisfy({ $0 > 0 }) else {
                throw s.error("spacing", "expected 3 positive voxel sizes in mm (x, y, z)")
            }
            if sp.count == 2 { spacing = sp + [1] }
        }
        sliceAxis = try s.choice("slice_axis", default: .z)
        patch = try PatchConfig(try s.section("patch"), dims: dims, multiple: model.unet.sizeMultiple)
        augmentation = try AugmentationConfig(try s.section("augmentation"))
        seed = UInt64(try s.int("seed", default: 0, min: 0))
        threads = try s.int("threads", default: 2, min: 1)
        prefetch = try s.int("prefetch", default: 4, min: 1)
        try s.finish()
    }

    var resolved: ConfigValue {
        var pairs: [(String, ConfigValue)] = []
        switch source {
        case .phantom(let p): pairs.append(("phantom", p.resolved))
        case .manifest(let m): pairs.append(("manifest", .string(m)))
        case .globs(let images, let labels):
            if images.count == 1 {
                pairs.append(("images", .string(images[0])))
            } else {
                pairs.append(("images", .map(zip(modalities, images).map { ($0, .string($1)) })))
            }
            pairs.append(("labels", .string(labels)))
        }
        if case .globs(let images, _) = source, images.count > 1 {} else {
            pairs.append(("modalities", .strings(modalities)))
        }
        pairs += [
            ("validation", validation.resolved), ("normalization", normalization.resolved),
            ("spacing", .optional(spacing)), ("slice_axis", .string(sliceAxis.rawValue)),
            ("patch", patch.resolved), ("augmentation", augmentation.resolved),
            ("seed", .int(Int(seed))), ("threads", .int(threads)), ("prefetch", .int(prefetch)),
        ]
        return .map(pairs)
    }
}

/// `data.phantom:` — synthetic images of nested blobs, see `Phantom`.
public struct PhantomConfig: Equatable, Sendable {
    public var dims: Int
    /// Image size in voxels, (x, y) or (x, y, z).
    public var size: [Int]
    /// Number of phantoms (training + validation).
    public var count: Int
    /// Classes including background; at most `model.unet.classes`.
    public var classes: Int
    /// Gaussian noise standard deviation, relative to the class-1 intensity.
    public var noise: Double
    /// Amplitude of the smooth multiplicative bias field (0 = none).
    public var bias: Double
    /// Voxel size in mm (x, y, z).
    public var spacing: [Double]
    public var seed: UInt64

    public init(dims: Int, size: [Int], count: Int, classes: Int, noise: Double, bias: Double, spacing: [Double], seed: UInt64) {
        self.dims = dims
        self.size = size
        self.count = count
        self.classes = classes
        self.noise = noise
        self.bias = bias
        self.spacing = spacing
        self.seed = seed
    }

    init(_ s: ConfigSection, dims modelDims: Int, classes modelClasses: Int) throws {
        dims = try s.int("dims", default: modelDims)
        guard dims == 2 || dims == 3 else { throw s.error("dims", "must be 2 or 3, got \(dims)") }
        size = try s.ints("size") ?? (dims == 2 ? [96, 96] : [48, 48, 48])
        guard size.count == dims, size.allSatisfy({ $0 >= 8 }) else {
            throw s.error("size", "expected \(dims) sizes of at least 8 voxels")
        }
        count = try s.int("count", default: 24, min: 2)
        classes = try s.int("classes", default: modelClasses, min: 2)
        guard classes <= modelClasses else {
            throw s.error("classes", "\(classes) classes do not fit model.unet.classes = \(modelClasses)")
        }
        noise = try s.double("noise", default: 0.1, range: 0...10)
        bias = try s.double("bias", default: 0.2, range: 0...0.9)
        spacing = try s.doubles("spacing") ?? [1, 1, 1]
        guard spacing.count == 3, spacing.allSatisfy({ $0 > 0 }) else {
            throw s.error("spacing", "expected 3 positive voxel sizes in mm (x, y, z)")
        }
        seed = UInt64(try s.int("seed", default: 1, min: 0))
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("dims", .int(dims)), ("size", .ints(size)), ("count", .int(count)), ("classes", .int(classes)),
            ("noise", .number(noise)), ("bias", .number(bias)), ("spacing", .numbers(spacing)), ("seed", .int(Int(seed))),
        ])
    }
}

/// `data.validation:`.
public struct ValidationConfig: Equatable, Sendable {
    /// `subject`: whole subjects are held out; `position`: every volume is cut along `axis` and the
    /// last `fraction` of it is held out (for data sets of one or two volumes).
    public var by: ValidationSplitKind
    public var fraction: Double
    public var axis: SpatialAxis

    init(_ s: ConfigSection) throws {
        by = try s.choice("by", default: .subject)
        fraction = try s.double("fraction", default: 0.2, range: 0...0.9)
        axis = try s.choice("axis", default: .z)
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([("by", .string(by.rawValue)), ("fraction", .number(fraction)), ("axis", .string(axis.rawValue))])
    }
}

/// `data.normalization:` — per channel, over the whole volume (or its non-zero voxels).
public struct NormalizationConfig: Equatable, Sendable {
    public var kind: NormalizationKind
    /// Percentiles for `percentile`: values are clipped to [lower, upper] and mapped to [0, 1].
    public var lower: Double
    public var upper: Double
    /// Statistics from non-zero voxels only (skull-stripped images).
    public var nonzero: Bool

    init(_ s: ConfigSection) throws {
        kind = try s.choice("kind", default: .zscore)
        lower = try s.double("lower", default: 0.5, range: 0...100)
        upper = try s.double("upper", default: 99.5, range: 0...100)
        guard lower < upper else { throw s.error("upper", "must be above lower (\(lower))") }
        nonzero = try s.bool("nonzero", default: false)
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([("kind", .string(kind.rawValue)), ("lower", .number(lower)), ("upper", .number(upper)), ("nonzero", .bool(nonzero))])
    }
}

/// `data.patch:` — what one training sample is.
public struct PatchConfig: Equatable, Sendable {
    /// Patch size in voxels, (x, y, z) for 3D or the two in-plane axes for 2D; nil in 2D means
    /// whole slices (padded to the network's size multiple).
    public var size: [Int]?
    /// Fraction of samples centred on a random foreground voxel (the rest are uniform).
    public var foreground: Double

    init(_ s: ConfigSection, dims: Int, multiple: Int) throws {
        size = try s.ints("size")
        if size == nil && dims == 3 { size = [64, 64, 64] }
        if let size {
            guard size.count == dims, size.allSatisfy({ $0 > 0 }) else {
                throw s.error("size", "expected \(dims) positive sizes in voxels")
            }
            guard size.allSatisfy({ $0 % multiple == 0 }) else {
                throw s.error("size", "\(size) must be multiples of \(multiple) (the product of model.unet.strides)")
            }
        }
        foreground = try s.double("foreground", default: 0.5, range: 0...1)
        try s.finish()
    }

    var resolved: ConfigValue { .map([("size", .optional(size)), ("foreground", .number(foreground))]) }
}

/// `data.augmentation:` — applied to training samples only.
public struct AugmentationConfig: Equatable, Sendable {
    /// Axes mirrored, each with probability 1/2.
    public var flip: [SpatialAxis]
    /// Maximum rotation in degrees (about z in 2D, about each axis in 3D).
    public var rotation: Double
    /// Maximum relative zoom: the scale factor is uniform in [1 − scaling, 1 + scaling].
    public var scaling: Double
    /// Intensity jitter: per channel, `x · (1 + a) + b` with a, b uniform in [−intensity, intensity].
    public var intensity: Double
    /// Probability that a sample gets the rotation/scaling transform.
    public var probability: Double

    public var isIdentity: Bool { flip.isEmpty && (rotation == 0 && scaling == 0 || probability == 0) && intensity == 0 }

    init(_ s: ConfigSection) throws {
        let axes = try s.strings("flip") ?? []
        flip = try axes.enumerated().map { i, name in
            guard let axis = SpatialAxis(rawValue: name) else {
                throw MorphoTrainError.config(file: s.file, key: "\(s.keyPath("flip"))[\(i)]", message: "expected x, y or z, got \"\(name)\"")
            }
            return axis
        }
        rotation = try s.double("rotation", default: 0, range: 0...180)
        scaling = try s.double("scaling", default: 0, range: 0...0.9)
        intensity = try s.double("intensity", default: 0, range: 0...1)
        probability = try s.double("probability", default: 0.5, range: 0...1)
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("flip", .strings(flip.map(\.rawValue))), ("rotation", .number(rotation)), ("scaling", .number(scaling)),
            ("intensity", .number(intensity)), ("probability", .number(probability)),
        ])
    }
}

// MARK: - loss

public enum RegionalLossKind: String, CaseIterable, Sendable { case dice, ce, balanced_ce, dice_ce }
public enum AlphaScheduleKind: String, CaseIterable, Sendable { case constant, increase, rebalance }

/// `loss:` — `(1 − α)·regional + α·boundary (+ prl.weight · PRL)`, with α from `schedule`.
public struct LossConfig: Equatable, Sendable {
    public var regional: RegionalLossKind
    /// Dice terms include the background class.
    public var includeBackground: Bool
    /// Boundary (surface) loss on signed distance maps of the classes `idc`.
    public var boundary: Bool
    public var idc: [Int]
    /// Weight λ of the physical regularisation loss (0 = off) and its edge threshold K (seed 000;
    /// the inputs are probabilities, so K is of order 0.1–1 rather than the seed's 20 for 0–255).
    public var prlWeight: Double
    public var prlK: Double
    public var schedule: AlphaScheduleConfig

    init(_ s: ConfigSection, classes: Int) throws {
        regional = try s.choice("regional", default: .dice_ce)
        includeBackground = try s.bool("include_background", default: true)
        let b = try s.section("boundary")
        boundary = try b.bool("enabled", default: true)
        idc = try b.ints("idc") ?? Array(1..<classes)
        for (i, c) in idc.enumerated() where !(0..<classes).contains(c) {
            throw MorphoTrainError.config(file: s.file, key: "\(b.keyPath("idc"))[\(i)]", message: "class \(c) is not in 0..<\(classes)")
        }
        try b.finish()
        let p = try s.section("prl")
        prlWeight = try p.double("weight", default: 0, range: 0...1000)
        prlK = try p.double("K", default: 0.5, range: 1e-6...1e6)
        try p.finish()
        schedule = try AlphaScheduleConfig(try s.section("schedule"))
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("regional", .string(regional.rawValue)), ("include_background", .bool(includeBackground)),
            ("boundary", .map([("enabled", .bool(boundary)), ("idc", .ints(idc))])),
            ("prl", .map([("weight", .number(prlWeight)), ("K", .number(prlK))])),
            ("schedule", schedule.resolved),
        ])
    }
}

/// `loss.schedule:` — per epoch e, α_e = min(cap, α0 + e·Δ); `rebalance` weights the regional term
/// by max(floor, 1 − α_e) (the boundary-loss authors' recipe), `increase` by 1, `constant` keeps
/// (1, α0). MorphoLosses' `AlphaSchedule` evaluates it.
public struct AlphaScheduleConfig: Equatable, Sendable {
    public var kind: AlphaScheduleKind
    public var alpha0: Double
    public var delta: Double
    public var floor: Double
    /// Upper bound of α (nil: none).
    public var cap: Double?

    init(_ s: ConfigSection) throws {
        kind = try s.choice("kind", default: .rebalance)
        alpha0 = try s.double("alpha0", default: 0.01, range: 0...1)
        delta = try s.double("delta", default: 0.01, range: 0...1)
        floor = try s.double("floor", default: 0.1, range: 0...1)
        cap = try s.double("cap")
        if let cap, !(0...1).contains(cap) { throw s.error("cap", "must be in 0...1, got \(cap)") }
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("kind", .string(kind.rawValue)), ("alpha0", .number(alpha0)), ("delta", .number(delta)),
            ("floor", .number(floor)), ("cap", .optional(cap)),
        ])
    }

    /// The schedule object the loss uses.
    public var alphaSchedule: AlphaSchedule {
        let k: AlphaSchedule.Kind = kind == .constant ? .constant : kind == .increase ? .increase : .rebalance
        return AlphaSchedule(kind: k, alpha0: alpha0, delta: delta, floor: floor, cap: cap)
    }
}

// MARK: - training

public enum OptimizerKind: String, CaseIterable, Sendable { case adam, adamw, sgd }
public enum LRScheduleKind: String, CaseIterable, Sendable { case poly, cosine, step, constant }

/// `training:`.
public struct TrainingConfig: Equatable, Sendable {
    public var epochs: Int
    public var stepsPerEpoch: Int
    public var batchSize: Int
    public var optimizer: OptimizerConfig
    public var lrSchedule: LRScheduleConfig
    /// Maximum global gradient norm (0 = no clipping).
    public var gradClip: Double
    /// Validate after every N epochs (and after the last one).
    public var validateEvery: Int
    /// Stop after this many validations without a better mean Dice (0 = never).
    public var patience: Int
    /// Seed of the weight initialisation.
    public var seed: UInt64

    init(_ s: ConfigSection) throws {
        epochs = try s.int("epochs", default: 50, min: 1)
        stepsPerEpoch = try s.int("steps_per_epoch", default: 50, min: 1)
        batchSize = try s.int("batch_size", default: 4, min: 1)
        optimizer = try OptimizerConfig(try s.section("optimizer"))
        lrSchedule = try LRScheduleConfig(try s.section("lr_schedule"))
        gradClip = try s.double("grad_clip", default: 10, range: 0...1e9)
        validateEvery = try s.int("validate_every", default: 1, min: 1)
        patience = try s.section("early_stopping").readPatience()
        seed = UInt64(try s.int("seed", default: 0, min: 0))
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("epochs", .int(epochs)), ("steps_per_epoch", .int(stepsPerEpoch)), ("batch_size", .int(batchSize)),
            ("optimizer", optimizer.resolved), ("lr_schedule", lrSchedule.resolved), ("grad_clip", .number(gradClip)),
            ("validate_every", .int(validateEvery)), ("early_stopping", .map([("patience", .int(patience))])),
            ("seed", .int(Int(seed))),
        ])
    }
}

private extension ConfigSection {
    func readPatience() throws -> Int {
        let p = try int("patience", default: 0, min: 0)
        try finish()
        return p
    }
}

/// `training.optimizer:`.
public struct OptimizerConfig: Equatable, Sendable {
    public var kind: OptimizerKind
    public var lr: Double
    public var weightDecay: Double
    /// SGD momentum (Nesterov off); Adam's β1 and β2 are `betas`.
    public var momentum: Double
    public var betas: [Double]

    init(_ s: ConfigSection) throws {
        kind = try s.choice("kind", default: .adam)
        lr = try s.double("lr", default: 1e-3, range: 1e-12...10)
        weightDecay = try s.double("weight_decay", default: kind == .adamw ? 1e-2 : 0, range: 0...10)
        momentum = try s.double("momentum", default: 0.9, range: 0...0.999999)
        betas = try s.doubles("betas") ?? [0.9, 0.999]
        guard betas.count == 2, betas.allSatisfy({ (0..<1).contains($0) }) else {
            throw s.error("betas", "expected two numbers in [0, 1)")
        }
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("kind", .string(kind.rawValue)), ("lr", .number(lr)), ("weight_decay", .number(weightDecay)),
            ("momentum", .number(momentum)), ("betas", .numbers(betas)),
        ])
    }
}

/// `training.lr_schedule:` — the learning rate per epoch e of E (0-based), after `warmup_epochs`
/// of linear warm-up: poly `lr·(1 − e/E)^power`, cosine `min_lr + (lr − min_lr)·(1 + cos(π e/E))/2`,
/// step `lr·gamma^⌊e/step_size⌋`, constant `lr` (MorphoNN's `LearningRateSchedule`).
public struct LRScheduleConfig: Equatable, Sendable {
    public var kind: LRScheduleKind
    public var power: Double
    public var stepSize: Int
    public var gamma: Double
    public var minLR: Double
    public var warmupEpochs: Int

    init(_ s: ConfigSection) throws {
        kind = try s.choice("kind", default: .poly)
        power = try s.double("power", default: 0.9, range: 0...10)
        stepSize = try s.int("step_size", default: 10, min: 1)
        gamma = try s.double("gamma", default: 0.5, range: 0...1)
        minLR = try s.double("min_lr", default: 0, range: 0...10)
        warmupEpochs = try s.int("warmup_epochs", default: 0, min: 0)
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("kind", .string(kind.rawValue)), ("power", .number(power)), ("step_size", .int(stepSize)),
            ("gamma", .number(gamma)), ("min_lr", .number(minLR)), ("warmup_epochs", .int(warmupEpochs)),
        ])
    }

    /// MorphoNN's schedule over `epochs` epochs (the unit of `step` is the epoch).
    public func schedule(epochs: Int) -> LearningRateSchedule {
        switch kind {
        case .constant: return .constant
        case .poly: return .poly(power: Float(power), total: epochs)
        case .cosine: return .cosine(total: epochs, minimum: Float(minLR))
        case .step: return .step(every: stepSize, gamma: Float(gamma))
        }
    }

    /// Learning rate for `epoch` (0-based) of `epochs`, starting from `base`: linear warm-up
    /// `base·(e + 1)/(warmup_epochs + 1)` for the first `warmup_epochs`, then the schedule.
    public func rate(base: Double, epoch: Int, epochs: Int) -> Double {
        if warmupEpochs > 0 && epoch < warmupEpochs { return base * Double(epoch + 1) / Double(warmupEpochs + 1) }
        return Double(schedule(epochs: epochs).learningRate(base: Float(base), step: epoch))
    }
}

// MARK: - inference and output

public enum BlendingKind: String, CaseIterable, Sendable { case gaussian, linear, constant }

/// `inference:` — sliding-window prediction on whole volumes (validation and `morphoseg segment`).
public struct InferenceConfig: Equatable, Sendable {
    /// Window size in voxels (x, y, z order like `data.patch.size`); nil = the patch size, or whole
    /// slices in 2D.
    public var window: [Int]?
    /// Fraction of the window shared by neighbouring windows.
    public var overlap: Double
    /// Weights of each window's voxels when overlapping predictions are averaged.
    public var blending: BlendingKind
    /// Windows per forward pass.
    public var batchSize: Int

    init(_ s: ConfigSection, data: DataConfig, model: ModelConfig) throws {
        window = try s.ints("window") ?? data.patch.size
        if let window {
            let m = model.unet.sizeMultiple
            guard window.count == model.unet.dims, window.allSatisfy({ $0 > 0 && $0 % m == 0 }) else {
                throw s.error("window", "expected \(model.unet.dims) positive sizes, multiples of \(m)")
            }
        }
        overlap = try s.double("overlap", default: 0.5, range: 0...0.95)
        blending = try s.choice("blending", default: .gaussian)
        batchSize = try s.int("batch_size", default: 2, min: 1)
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("window", .optional(window)), ("overlap", .number(overlap)), ("blending", .string(blending.rawValue)),
            ("batch_size", .int(batchSize)),
        ])
    }
}

/// `output:`.
public struct OutputConfig: Equatable, Sendable {
    /// The run folder (default `runs/<name>`).
    public var dir: String
    /// Draw `curves.png` and `overlay.png` after each validation.
    public var plots: Bool

    init(_ s: ConfigSection, name: String) throws {
        dir = try s.string("dir", default: "runs/\(name)")
        plots = try s.bool("plots", default: true)
        try s.finish()
    }

    var resolved: ConfigValue { .map([("dir", .string(dir)), ("plots", .bool(plots))]) }
}
