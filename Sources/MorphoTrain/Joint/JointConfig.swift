import Foundation
import MorphoIO
import MorphoLosses

/// How the two networks of a joint run are optimised.
public enum JointStrategy: String, CaseIterable, Sendable {
    /// One optimiser step on the whole objective updates both networks.
    case joint
    /// DeepAtlas (Xu & Niethammer 2019): `alternate_steps` steps update the registration network
    /// (the U-Net's output held constant), then as many update the U-Net (the field held constant).
    case alternating
}

/// How `data.augmentation` treats the two images of a training pair in a joint run
/// (`joint.pair_augmentation`).
public enum JointPairAugmentation: String, CaseIterable, Sendable {
    /// Moving and fixed each from their own draw (the pairs differ by two random transforms).
    case independent
    /// One draw per pair, applied to both images: the same rotation, zoom, mirror and intensity
    /// change, so the pair differs only as the unaugmented pair does (as the held-out pairs do).
    case shared
    /// The pairs are not augmented; only the `segmentation_batch` samples are.
    case none
}

/// `joint:` — the coupling of a joint segmentation + registration run (the segmentation terms
/// come from `loss:`, the registration terms and the field network from `registration:`).
public struct JointConfig: Equatable, Sendable {
    public var strategy: JointStrategy
    /// k of the alternating strategy: steps per phase (registration first).
    public var alternateSteps: Int
    /// How many training images keep their label maps (the first ones in data order; nil = all).
    /// The others train the networks only through the similarity and coupling terms.
    public var labelledImages: Int?
    /// Weight w_c of the coupling Dice between the fixed segmentation and the warped moving one —
    /// DeepAtlas' anatomy loss: `1 − Dice(Ŝ_M∘(id+u), Ŝ_F)` over the foreground channels, Ŝ the
    /// one-hot labels of a labelled image and the U-Net's softmax of an unlabelled one (so it is
    /// the anatomy-aware similarity on every pair, labelled or not). 0 turns it off.
    public var couplingWeight: WeightConfig
    /// `joint.coupling.detach_segmentation` (default false): the U-Net's softmax on the coupling
    /// term's two sides is a constant of the step, so the term trains the displacement network
    /// only (an anatomy-aware similarity that leaves the segmentation to its own terms); false:
    /// its gradient reaches both networks (DeepAtlas' anatomy loss).
    public var couplingDetachSegmentation: Bool
    /// Weight w_wl of the warped-labels term (`joint.warped_labels.weight`, default 0 = off): the
    /// labels of a labelled moving image, warped onto the unlabelled fixed image it is paired
    /// with, as a soft cross-entropy target of the U-Net on that fixed image,
    ///
    ///     L_wl = −(1 / (N·|Ω|)) Σ_{pairs i: M_i labelled, F_i not} Σ_v Σ_c T_ic(v) · log S_c(F_i)(v),
    ///     T_i = onehot(L_{M_i})∘(id + u_i)  (linear warp; T_i0 = 1 − Σ_{c≥1} T_ic),
    ///
    /// a mean over all N pairs of the batch (pairs without such a target contribute 0).
    public var warpedLabelsWeight: WeightConfig
    /// `joint.warped_labels.detach` (default true): the warp of the target is a constant of the
    /// step (u detached), so the term trains the U-Net only; false lets its gradient reach the
    /// displacement network too (through T).
    public var warpedLabelsDetach: Bool
    /// Weight w_wp of the warped-pairs terms (`joint.warped_pairs.weight`, default 0 = off):
    /// registration as learned augmentation (cf. Zhao et al. 2019). Every labelled moving image
    /// M of the batch's pairs, and of `warpedPairsExtra` extra pairs, is warped by its pair's
    /// field u (detached: a constant of the step) together with its labels, and the U-Net is
    /// trained on that exact image–label pair with the labelled samples' own objective,
    ///
    ///     w_wp · [w_R(e) · regional(S(M∘(id+u)), T) + α(e) · boundary(S(M∘(id+u)), φ_M∘(id+u))],
    ///     T = onehot(L_M)∘(id+u)  (linear warp of the foreground channels, T_0 = 1 − Σ_{c≥1} T_c),
    ///
    /// the regional loss the soft-target form of `loss.regional` (`SoftTargetRegionalLoss`), a
    /// mean over the W warped samples; φ_M the signed distance maps of L_M, warped linearly with
    /// it. A number or `{start, step, cap}`.
    public var warpedPairsWeight: WeightConfig
    /// `joint.warped_pairs.extra` (default 0): E more pairs per step for the warped-pairs terms
    /// only — a labelled training image (uniformly) as the moving image and another training
    /// image (uniformly) as the fixed one, from the stream `(seed, step, j, warpedPairStream)` —
    /// whose fields the displacement network computes without gradients; they enter no other term.
    public var warpedPairsExtra: Int
    /// `joint.segmentation_batch` (default 0): S extra labelled-only samples per step beside the
    /// N pairs — labelled training images drawn uniformly with replacement, each augmented with
    /// `data.augmentation` from its own draw — that enter only the segmentation terms (the
    /// U-Net's stream of a segmentation run of batch S). The segmentation terms then average over
    /// the L labelled images of the pairs plus these S.
    public var segmentationBatch: Int
    /// `joint.pair_augmentation` (default `independent`): how `data.augmentation` applies to the
    /// two images of a pair.
    public var pairAugmentation: JointPairAugmentation

    public init(_ s: ConfigSection) throws {
        strategy = try s.choice("strategy", default: .joint)
        alternateSteps = try s.int("alternate_steps", default: 1, min: 1)
        labelledImages = try s.int("labelled_images")
        if let n = labelledImages, n < 0 { throw s.error("labelled_images", "must be at least 0, got \(n)") }
        let c = try s.section("coupling")
        couplingWeight = try WeightConfig.read(c, "weight", default: 1)
        couplingDetachSegmentation = try c.bool("detach_segmentation", default: false)
        try c.finish()
        let w = try s.section("warped_labels")
        warpedLabelsWeight = try WeightConfig.read(w, "weight", default: 0)
        warpedLabelsDetach = try w.bool("detach", default: true)
        try w.finish()
        let p = try s.section("warped_pairs")
        warpedPairsWeight = try WeightConfig.read(p, "weight", default: 0)
        warpedPairsExtra = try p.int("extra", default: 0, min: 0)
        try p.finish()
        segmentationBatch = try s.int("segmentation_batch", default: 0, min: 0)
        pairAugmentation = try s.choice("pair_augmentation", default: .independent)
        try s.finish()
    }

    /// Whether the warped-pairs terms are part of the objective (a weight above 0 at some epoch).
    public var warpedPairsOn: Bool { warpedPairsWeight.start > 0 || warpedPairsWeight.step > 0 }

    public var resolved: ConfigValue {
        .map([
            ("strategy", .string(strategy.rawValue)), ("alternate_steps", .int(alternateSteps)),
            ("labelled_images", labelledImages.map { .int($0) } ?? .null),
            ("coupling", .map([("weight", couplingWeight.resolved), ("detach_segmentation", .bool(couplingDetachSegmentation))])),
            ("warped_labels", .map([("weight", warpedLabelsWeight.resolved), ("detach", .bool(warpedLabelsDetach))])),
            ("warped_pairs", .map([("weight", warpedPairsWeight.resolved), ("extra", .int(warpedPairsExtra))])),
            ("segmentation_batch", .int(segmentationBatch)), ("pair_augmentation", .string(pairAugmentation.rawValue)),
        ])
    }
}

/// A joint run's config: the shared `RunConfig` (model.unet is the segmentation U-Net, loss is
/// its objective, data/training/output as usual) plus `registration:` (the displacement network,
/// similarity and smoothness terms, pair mode) and `joint:`, all in one YAML file with
/// `model: {kind: joint}`. See `Configs/joint-2d.yaml`.
public struct JointRunConfig: Equatable, Sendable {
    public var run: RunConfig
    public var registration: RegistrationConfig
    public var joint: JointConfig

    /// The registration part as a registration run config (what `RegistrationDataset` and
    /// `makeDisplacementNet` take).
    public var registrationRun: RegistrationRunConfig { RegistrationRunConfig(run: run, registration: registration) }

    /// Reads a joint config file (see `TaskConfig.load`, which reads any kind).
    public static func load(_ path: String) throws -> JointRunConfig {
        try JointRunConfig(yaml: ConfigFile.text(at: path), file: path, defaultName: ConfigFile.defaultName(path))
    }

    public init(yaml: String, file: String = "<config>", defaultName: String = "run") throws {
        try self.init(root: ConfigSection(yaml: yaml, file: file), defaultName: defaultName)
    }

    /// Reads `registration:`, `joint:` and then the shared sections from `root`; `model.kind` must
    /// be `joint`, there must be one modality and no registration Dice term.
    public init(root: ConfigSection, defaultName: String) throws {
        let file = root.file
        let phantom = try root.section("data").contains("phantom")
        registration = try RegistrationConfig(try root.section("registration"), phantom: phantom)
        joint = try JointConfig(try root.section("joint"))
        run = try RunConfig(root: root, defaultName: defaultName)
        guard run.model.kind == .joint else {
            throw MorphoTrainError.config(file: file, key: "model.kind", message: "a joint config needs kind: joint, got \(run.model.kind.rawValue)")
        }
        guard run.inputChannels == 1 else {
            throw MorphoTrainError.config(file: file, key: "data.modalities", message: "joint training takes one modality, got \(run.inputChannels)")
        }
        if registration.diceWeight.start > 0 || registration.diceWeight.step > 0 {
            throw MorphoTrainError.config(
                file: file, key: "registration.loss.dice.weight",
                message: "joint runs couple the networks through joint.coupling.weight; set this to 0")
        }
    }

    public init(run: RunConfig, registration: RegistrationConfig, joint: JointConfig) {
        self.run = run
        self.registration = registration
        self.joint = joint
    }

    /// The two extra sections as YAML (what checkpoints carry in their metadata).
    public var extraYAML: String {
        ConfigValue.map([("registration", registration.resolved), ("joint", joint.resolved)]).yaml()
    }

    /// The resolved YAML: the shared sections, then `registration:` and `joint:`.
    public var yaml: String { run.yaml + extraYAML }

    /// The config of the joint checkpoint at `path`: its `RunConfig` plus the sections stored in
    /// its metadata (key `joint`) or, failing that, in `joint.yaml` beside it.
    ///
    /// - Throws: `MorphoTrainError.checkpoint` when the file is not a joint checkpoint or its
    ///   sections cannot be found.
    public static func load(checkpoint path: String) throws -> JointRunConfig {
        let ckpt = try Checkpoint.read(path)
        guard ckpt.task == .joint else {
            throw MorphoTrainError.checkpoint(path: path, message: "is a \(ckpt.task.rawValue) checkpoint, not a joint one")
        }
        guard case .joint(let config) = try TaskConfig(checkpoint: ckpt, path: path) else {
            preconditionFailure("TaskConfig(checkpoint:) of a joint checkpoint is joint")
        }
        return config
    }
}
