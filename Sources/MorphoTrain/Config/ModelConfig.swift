import MorphoNN

/// `model:` — the task and its network's shape.
///
/// Segmentation and joint runs describe their U-Net under `model.unet`. A registration run's
/// network is the `DisplacementNet` of `registration.network`; `model.network: {dims, classes}`
/// gives its dimensionality and the label classes Dice is reported for. Registration configs
/// written before `model.network` existed (and the configs embedded in their checkpoints) say
/// `model.unet`; that is still read, with a one-line deprecation warning on stderr.
public struct ModelConfig: Equatable, Sendable {
    public var kind: TaskKind
    /// The U-Net of segmentation and joint runs. In a registration run only `dims` and `classes`
    /// come from the config (`model.network`); the rest is the U-Net defaults, whose size multiple
    /// still checks `data.patch.size` and `inference.window` as before.
    public var unet: UNetConfig

    /// Spatial dimensionality of the network, 2 or 3.
    public var dims: Int { unet.dims }
    /// Label classes including background.
    public var classes: Int { unet.classes }

    init(_ s: ConfigSection) throws {
        kind = try s.choice("kind", default: .segmentation)
        if kind == .registration {
            if s.contains("unet") {
                guard !s.contains("network") else {
                    throw s.error("unet", "a registration network is described by model.network only; remove model.unet")
                }
                ConfigSection.warn(file: s.file, key: s.keyPath("unet"), "deprecated in registration configs, write model.network: {dims, classes}")
                unet = try UNetConfig(try s.section("unet"))
            } else {
                _ = s.node("unet")
                unet = try UNetConfig(network: try s.section("network"))
            }
        } else {
            unet = try UNetConfig(try s.section("unet"))
            if kind == .joint && unet.deepSupervision {
                throw s.error("unet", "deep_supervision applies to segmentation runs, not joint ones")
            }
        }
        try s.finish()
    }

    var resolved: ConfigValue {
        kind == .registration
            ? .map([("kind", .string(kind.rawValue)), ("network", .map([("dims", .int(unet.dims)), ("classes", .int(unet.classes))]))])
            : .map([("kind", .string(kind.rawValue)), ("unet", unet.resolved)])
    }
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
    /// MorphoNN's normalisation after each convolution.
    public var norm: NormKind.Name
    /// MorphoNN's non-linearity after each normalisation: one of `activations` (`leaky_relu`
    /// has slope 0.01).
    public var activation: ActivationKind.Name
    /// Output classes including background (≥ 2).
    public var classes: Int
    /// `residual_units` (MONAI's `num_res_units`): residual units per encoder level (0: plain
    /// conv blocks, the network of earlier runs, weight for weight).
    public var residualUnits: Int = 0
    /// `deep_supervision`: 1×1 logit heads on the decoder's lower levels and a loss summed over
    /// resolutions (nnU-Net); inference reads the full-resolution head only.
    public var deepSupervision: Bool = false

    /// The activations a U-Net block takes, in the order errors list them.
    public static let activations: [ActivationKind.Name] = [.prelu, .leaky_relu, .relu]

    /// Input sizes must be multiples of this (the product of the strides).
    public var sizeMultiple: Int { strides.reduce(1, *) }

    public init(dims: Int, channels: [Int], strides: [Int], norm: NormKind.Name, activation: ActivationKind.Name, classes: Int) {
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
        guard channels.count <= ConfigBounds.levels, channels.allSatisfy({ $0 <= ConfigBounds.channels }) else {
            throw s.error("channels", "at most \(ConfigBounds.levels) levels of at most \(ConfigBounds.channels) channels")
        }
        strides = try s.ints("strides") ?? Array(repeating: 2, count: channels.count - 1)
        guard strides.count == channels.count - 1 else {
            throw s.error("strides", "needs \(channels.count - 1) entries (one fewer than channels), got \(strides.count)")
        }
        guard strides.allSatisfy({ (1...8).contains($0) }) else { throw s.error("strides", "entries must be 1 to 8") }
        norm = try s.choice("norm", default: .instance)
        activation = try s.choice("activation", default: .leaky_relu, among: Self.activations)
        classes = try s.int("classes", default: 2, min: 2, max: ConfigBounds.classes)
        residualUnits = try s.int("residual_units", default: 0, min: 0)
        guard residualUnits <= 8 else { throw s.error("residual_units", "must be at most 8, got \(residualUnits)") }
        deepSupervision = try s.bool("deep_supervision", default: false)
        try s.finish()
    }

    /// `model.network:` of a registration run: `dims` and `classes`, the other fields at their
    /// `model.unet` defaults.
    init(network s: ConfigSection) throws {
        try self.init(ConfigSection(file: s.file, path: "model.unet", pairs: []))
        dims = try s.int("dims", default: 2)
        guard dims == 2 || dims == 3 else { throw s.error("dims", "must be 2 or 3, got \(dims)") }
        classes = try s.int("classes", default: 2, min: 2, max: ConfigBounds.classes)
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("dims", .int(dims)), ("channels", .ints(channels)), ("strides", .ints(strides)),
            ("norm", .string(norm.rawValue)), ("activation", .string(activation.rawValue)), ("classes", .int(classes)),
        ] + (residualUnits > 0 ? [("residual_units", .int(residualUnits))] : [])
            + (deepSupervision ? [("deep_supervision", .bool(true))] : []))
    }
}
