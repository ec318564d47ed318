import Foundation
import MorphoLosses

/// Where training pairs come from.
public enum RegistrationPairMode: String, CaseIterable, Sendable {
    /// Two independent random smooth deformations of the same subject (needs no alignment
    /// between subjects; the demo's mode): `fixed = s∘φ₁`, `moving = s∘φ₂`.
    case synthetic
    /// Random ordered pairs of distinct subjects of the data set.
    case random
    /// Every subject paired with one atlas (`registration.atlas`).
    case atlas
    /// The pairs listed in `data.manifest`, a CSV with columns `fixed`, `moving` and optionally
    /// `fixed_labels`, `moving_labels`, `split`.
    case listed
}

/// A loss weight read from a config: a number (constant) or `{start, step, cap}` (linear in the
/// epoch, `min(start + epoch·step, cap)`).
public struct WeightConfig: Equatable, Sendable {
    public var start: Double
    public var step: Double
    public var cap: Double?

    public init(_ value: Double) { start = value; step = 0; cap = nil }

    public var schedule: any WeightSchedule {
        step == 0 ? ConstantWeight(start) : LinearWeight(start: start, step: step, cap: cap)
    }

    static func read(_ s: ConfigSection, _ key: String, default value: Double) throws -> WeightConfig {
        guard let node = s.node(key) else { return WeightConfig(value) }
        if case .mapping = node {
            let m = try s.section(key)
            var w = WeightConfig(try m.double("start", default: value, range: 0...1e6))
            w.step = try m.double("step", default: 0, range: -1e6...1e6)
            w.cap = try m.double("cap")
            try m.finish()
            return w
        }
        return WeightConfig(try s.double(key, default: value, range: 0...1e6))
    }

    var resolved: ConfigValue {
        step == 0 && cap == nil
            ? .number(start)
            : .map([("start", .number(start)), ("step", .number(step)), ("cap", .optional(cap))])
    }
}

/// The smoothness regulariser of the field.
public enum SmoothnessKind: String, CaseIterable, Sendable {
    /// Mean squared forward differences (VoxelMorph's default).
    case grad_l2
    /// Mean absolute forward differences.
    case grad_l1
    /// Bending energy (second derivatives).
    case bending
}

/// `registration:` — the registration task's own section of a run config (the rest — data,
/// training, output — is the shared `RunConfig`). See `Configs/demo-reg.yaml`.
public struct RegistrationConfig: Equatable, Sendable {
    public var pairs: RegistrationPairMode
    /// Atlas image and labels (`atlas` mode).
    public var atlas: String?
    public var atlasLabels: String?
    /// `fixed`: subjects are moved onto the atlas; `moving`: the atlas is moved onto each subject.
    public var atlasIsFixed: Bool
    /// Linear pre-alignment of real subject pairs before training (`Prealignment`): in `random`
    /// mode every subject onto the first one, in `atlas` and `listed` mode each pair's moving
    /// image onto its fixed image. Not for `synthetic` pairs (one image deformed twice).
    public var prealign: PrealignKind
    /// The random fields of `synthetic` pairs.
    public var synthetic: SmoothRandomField
    /// Validation pairs drawn in `synthetic` and `random` modes.
    public var validationPairs: Int
    public var network: NetworkSettings
    public var similarity: SimilarityLoss
    public var similarityWeight: WeightConfig
    public var smoothness: SmoothnessKind
    public var smoothnessWeight: WeightConfig
    /// Weight of the Dice loss on warped one-hot labels (semi-supervised; 0 = unsupervised).
    public var diceWeight: WeightConfig

    /// `registration.network:` — `DisplacementNet`'s layout.
    public struct NetworkSettings: Equatable, Sendable {
        public var encoder: [Int]
        public var decoder: [Int]
        /// Scaling-and-squaring steps (0 = plain displacement, 7 = VoxelMorph's diffeomorphic mode).
        public var integrationSteps: Int
        /// Predict (and integrate) the field at half resolution.
        public var halfResolution: Bool

        /// Input sizes are padded to multiples of this (`2^encoder.count`).
        public var sizeMultiple: Int { 1 << encoder.count }
    }

    /// The defaults of an absent section.
    public static func defaults(phantom: Bool) throws -> RegistrationConfig {
        try RegistrationConfig(ConfigSection(yaml: "", file: "<defaults>").section("registration"), phantom: phantom)
    }

    /// Reads `registration:`; `phantom` (the data source is `data.phantom`) makes `synthetic` the
    /// default pair mode.
    public init(_ s: ConfigSection, phantom: Bool) throws {
        pairs = try s.choice("pairs", default: phantom ? .synthetic : .random)
        atlas = try s.string("atlas")
        atlasLabels = try s.string("atlas_labels")
        let role = try s.string("atlas_role", default: "fixed")
        guard role == "fixed" || role == "moving" else { throw s.error("atlas_role", "expected fixed or moving, got \"\(role)\"") }
        atlasIsFixed = role == "fixed"
        if pairs == .atlas && atlas == nil { throw s.error("atlas", "pairs: atlas needs the atlas image") }
        if pairs != .atlas && atlas != nil { throw s.error("atlas", "only used with pairs: atlas") }
        if phantom && (pairs == .atlas || pairs == .listed) {
            throw s.error("pairs", "\(pairs.rawValue) pairs need files (data.manifest), not data.phantom")
        }
        prealign = try s.choice("prealign", default: .none)
        if pairs == .synthetic && prealign != .none {
            throw s.error("prealign", "aligns real subject pairs (pairs: random, atlas or listed); synthetic pairs deform one image")
        }

        let syn = try s.section("synthetic")
        let smoothing = try syn.int("smoothing", default: 15, min: 1)
        guard smoothing % 2 == 1 else { throw syn.error("smoothing", "must be odd, got \(smoothing)") }
        synthetic = SmoothRandomField(
            smoothing: smoothing, maxDisplacement: Float(try syn.double("max_displacement", default: 4, range: 0...100)),
            integrationSteps: try syn.int("integration_steps", default: 7, min: 0))
        try syn.finish()
        validationPairs = try s.int("validation_pairs", default: 8, min: 1)

        let n = try s.section("network")
        let encoder = try n.ints("encoder") ?? [16, 32, 32, 32]
        let decoder = try n.ints("decoder") ?? [32, 32, 32, 32, 32, 16, 16]
        guard !encoder.isEmpty, encoder.allSatisfy({ $0 > 0 }) else { throw n.error("encoder", "expected positive widths") }
        guard decoder.count >= encoder.count, decoder.allSatisfy({ $0 > 0 }) else {
            throw n.error("decoder", "needs at least \(encoder.count) positive widths (one per encoder level)")
        }
        network = NetworkSettings(
            encoder: encoder, decoder: decoder, integrationSteps: try n.int("integration_steps", default: 0, min: 0),
            halfResolution: try n.bool("half_resolution", default: false))
        try n.finish()

        let l = try s.section("loss")
        let sim = try l.section("similarity")
        let window = try sim.int("window", default: 9, min: 1)
        guard window % 2 == 1 else { throw sim.error("window", "must be odd, got \(window)") }
        similarity = SimilarityLoss(kind: try sim.choice("kind", default: .lcc), window: window)
        similarityWeight = try WeightConfig.read(sim, "weight", default: 1)
        try sim.finish()
        let smooth = try l.section("smoothness")
        smoothness = try smooth.choice("kind", default: .grad_l2)
        smoothnessWeight = try WeightConfig.read(smooth, "weight", default: 1)
        try smooth.finish()
        let dice = try l.section("dice")
        diceWeight = try WeightConfig.read(dice, "weight", default: 0)
        try dice.finish()
        try l.finish()
        try s.finish()
    }

    /// The resolved section (every key, defaults filled).
    public var resolved: ConfigValue {
        .map([
            ("pairs", .string(pairs.rawValue)), ("atlas", .optional(atlas)), ("atlas_labels", .optional(atlasLabels)),
            ("atlas_role", .string(atlasIsFixed ? "fixed" : "moving")), ("prealign", .string(prealign.rawValue)),
            ("synthetic", .map([
                ("smoothing", .int(synthetic.smoothing)), ("max_displacement", .number(Double(synthetic.maxDisplacement))),
                ("integration_steps", .int(synthetic.integrationSteps)),
            ])),
            ("validation_pairs", .int(validationPairs)),
            ("network", .map([
                ("encoder", .ints(network.encoder)), ("decoder", .ints(network.decoder)),
                ("integration_steps", .int(network.integrationSteps)), ("half_resolution", .bool(network.halfResolution)),
            ])),
            ("loss", .map([
                ("similarity", .map([
                    ("kind", .string(similarity.kind.rawValue)), ("window", .int(similarity.window)),
                    ("weight", similarityWeight.resolved),
                ])),
                ("smoothness", .map([("kind", .string(smoothness.rawValue)), ("weight", smoothnessWeight.resolved)])),
                ("dice", .map([("weight", diceWeight.resolved)])),
            ])),
        ])
    }
}

/// A registration run's config: the shared `RunConfig` (model dims, data, training, output) plus
/// the `registration:` section, read from one YAML file.
///
/// `RunConfig` rejects keys it does not know, so the `registration:` section is read (and marked
/// used) first; everything else goes through `RunConfig` unchanged, with the same key-path errors.
public struct RegistrationRunConfig: Equatable, Sendable {
    public var run: RunConfig
    public var registration: RegistrationConfig

    /// Reads a registration config file (see `TaskConfig.load`, which reads any kind).
    public static func load(_ path: String) throws -> RegistrationRunConfig {
        try RegistrationRunConfig(yaml: ConfigFile.text(at: path), file: path, defaultName: ConfigFile.defaultName(path))
    }

    public init(yaml: String, file: String = "<config>", defaultName: String = "run") throws {
        try self.init(root: ConfigSection(yaml: yaml, file: file), defaultName: defaultName)
    }

    /// Reads `registration:` and then the shared sections from `root`; `model.kind` must be
    /// `registration` and there must be one modality.
    public init(root: ConfigSection, defaultName: String) throws {
        let file = root.file
        let phantom = try root.section("data").contains("phantom")
        let section = try root.section("registration")
        registration = try RegistrationConfig(section, phantom: phantom)
        run = try RunConfig(root: root, defaultName: defaultName)
        guard run.model.kind == .registration else {
            throw MorphoTrainError.config(file: file, key: "model.kind", message: "a registration config needs kind: registration, got \(run.model.kind.rawValue)")
        }
        guard run.inputChannels == 1 else {
            throw MorphoTrainError.config(file: file, key: "data.modalities", message: "registration takes one modality, got \(run.inputChannels)")
        }
    }

    public init(run: RunConfig, registration: RegistrationConfig) {
        self.run = run
        self.registration = registration
    }

    /// The resolved YAML: the shared sections, then `registration:`.
    public var yaml: String {
        run.yaml + ConfigValue.map([("registration", registration.resolved)]).yaml()
    }
}
