import Foundation
import MorphoLosses
import MorphoNN
import MorphoTensor

/// The two networks of a joint run under one module: `seg` (the U-Net, parameters `seg.…`) and
/// `reg` (the `DisplacementNet`, parameters `reg.…`). Checkpoints therefore name every tensor
/// `model.seg.…` / `model.reg.…`; `Checkpoint.segmentationPart` / `registrationPart` strip the
/// prefixes for `morphoseg segment` and `morphoseg register --model`.
public final class JointModel: Module {
    public let segmentation: UNet
    public let registration: DisplacementNet
    public static let segmentationPrefix = "seg."
    public static let registrationPrefix = "reg."

    public init(segmentation: UNet, registration: DisplacementNet) {
        self.segmentation = segmentation
        self.registration = registration
    }

    public var children: [(String, any Module)] { [("seg", segmentation), ("reg", registration)] }
}

/// Which network a step trains.
public enum JointPhase: String, Sendable {
    /// Both (fully joint strategy).
    case both
    /// The displacement network; the U-Net's output is a constant of the step.
    case registration
    /// The U-Net; the field is a constant of the step.
    case segmentation
}

/// One joint training batch of N pairs. Images `[N, 1, spatial…]`; label maps `[N, 1, spatial…]`
/// (class indices; all 0 for an unlabelled image, whose flag is false) and signed distance maps
/// `[N, K, spatial…]` (mm; zeros for unlabelled images).
public struct JointBatch: Sendable {
    public var moving: Tensor
    public var fixed: Tensor
    public var movingLabels: Tensor
    public var fixedLabels: Tensor
    public var movingLabelled: [Bool]
    public var fixedLabelled: [Bool]
    public var movingDistances: Tensor
    public var fixedDistances: Tensor
    public var phase: JointPhase
}

/// Joint segmentation + registration (DeepAtlas, Xu & Niethammer 2019) as a `TrainingTask`.
/// Per pair (moving M, fixed F) with the field u = reg(M, F) and the U-Net's softmax S(·):
///
///     w_sim · L_sim(F, M∘(id+u)) + w_smooth · R(u)                          registration
///   + w_R(e) · regional(S, L) + α(e) · boundary(S, φ_L) + λ_PRL · PRL(S_fg, L_fg)   over labelled images
///   + w_c · (1 − Dice(Ŝ_M∘(id+u), Ŝ_F))                                      coupling
///
/// where Ŝ is the one-hot ground truth of a labelled image and S of an unlabelled one, the warp
/// is linear (gradients reach both networks), `w_R`, `α` follow `loss.schedule` (rebalance:
/// `max(floor, 1 − α_e)`, `α_e = min(cap, α0 + e·Δ)`), the registration weights and terms come
/// from `registration.loss`, `w_c` from `joint.coupling.weight`. The boundary term reads signed
/// distance maps cached once per labelled image (computed per batch only for synthetic pairs,
/// which are new images every time). Segmentation terms of a batch without labelled images are 0.
///
/// `joint.strategy: alternating` evaluates the same terms but detaches the network that is not
/// being trained in this phase (`alternate_steps` registration steps, then as many segmentation
/// steps, counted from the start of each epoch), so the logged values stay comparable.
///
/// Validation (pairs of held-out, labelled images): `seg_dice.k` / `seg_dice_mean` (U-Net argmax
/// of both images vs their labels), `reg_dice.k` / `reg_dice_mean` / `reg_dice_before` (nearest-
/// warped moving labels vs fixed labels), `folding_percent`, `similarity`, and `dice_mean` — the
/// mean of `seg_dice_mean` and `reg_dice_mean`, the score.
public final class JointTask: TrainingTask {
    public typealias Batch = JointBatch

    public let config: JointRunConfig
    public let dataset: RegistrationDataset
    public let network: JointModel
    public let classes: Int
    /// Signed distance maps of the labelled images by image id (`[K, D, H, W]`, mm).
    let distanceCache: [String: VoxelArray]
    let objective: WeightedLoss<Output>
    private var lastValidation: (image: VoxelArray, labels: VoxelArray, predicted: [Float])?

    public var model: any Module { network }
    public var scoreName: String { "dice_mean" }

    struct Output {
        var batch: JointBatch
        var logits: Tensor
        var flow: Tensor
    }

    /// - Throws: `MorphoTrainError.config` when the data does not fit the networks (labels beyond
    ///   `model.unet.classes`, shapes not multiples of the U-Net's strides, too few images).
    public init(config: JointRunConfig, dataset: RegistrationDataset) throws {
        self.config = config
        var dataset = dataset
        let run = config.run
        classes = run.model.unet.classes
        guard dataset.classes <= classes else {
            throw MorphoTrainError.config(file: run.name, key: "model.unet.classes", message: "the labels go up to \(dataset.classes - 1), but only \(classes) classes are declared")
        }
        let spatial = run.model.unet.dims == 3 ? dataset.shape : Array(dataset.shape.dropFirst())
        let multiple = run.model.unet.sizeMultiple
        guard spatial.allSatisfy({ $0 % multiple == 0 }) else {
            throw MorphoTrainError.config(
                file: run.name, key: "model.unet.strides",
                message: "the data grid \(spatial) (padded for the displacement network) is not a multiple of the U-Net's \(multiple)")
        }
        if dataset.mode == .random && dataset.images.count < 2 {
            throw MorphoTrainError.config(file: run.name, key: "registration.pairs", message: "random pairs need at least 2 training images")
        }
        if let keep = config.joint.labelledImages {
            for i in dataset.images.indices where i >= keep { dataset.images[i].labels = nil }
        }
        guard dataset.validation.allSatisfy({ $0.fixed.labels != nil && $0.moving.labels != nil }) else {
            throw MorphoTrainError.config(file: run.name, key: "data", message: "every validation image needs a label map")
        }
        self.dataset = dataset
        let sliceWise = run.model.unet.dims == 2
        var cache: [String: VoxelArray] = [:]
        if run.loss.boundary && dataset.mode != .synthetic {
            for x in dataset.images + dataset.pairs.flatMap({ [$0.fixed, $0.moving] }) {
                if let l = x.labels, cache[x.id] == nil { cache[x.id] = Subject.signedDistances(l, classes: classes, sliceWise: sliceWise) }
            }
        }
        distanceCache = cache
        network = JointModel(segmentation: makeUNet(run), registration: makeDisplacementNet(config.registrationRun))
        objective = try Self.makeObjective(config, classes: classes)
    }

    public convenience init(config: JointRunConfig) throws {
        try self.init(config: config, dataset: RegistrationDataset.load(config.registrationRun))
    }

    /// Rows `indices` of `t` along N (differentiable).
    static func rows(_ t: Tensor, _ indices: [Int]) -> Tensor {
        if indices.count == t.shape[0] && indices == Array(0..<t.shape[0]) { return t }
        return Tensor.concat(indices.map { t.slice(axis: 0, $0..<($0 + 1)) }, axis: 0)
    }

    /// Per row: `a`'s row where `useA[i]`, else `b`'s.
    static func choose(_ useA: [Bool], _ a: Tensor, _ b: Tensor) -> Tensor {
        if useA.allSatisfy({ $0 }) { return a }
        if !useA.contains(true) { return b }
        return Tensor.concat(useA.indices.map { i in (useA[i] ? a : b).slice(axis: 0, i..<(i + 1)) }, axis: 0)
    }

    static func makeObjective(_ config: JointRunConfig, classes: Int) throws -> WeightedLoss<Output> {
        let r = config.registration, l = config.run.loss
        let similarity = r.similarity
        var terms: [LossTerm<Output>] = [
            LossTerm(similarity.kind.rawValue, weight: r.similarityWeight.schedule) { out in
                similarity(out.batch.fixed, warp(out.batch.moving, out.flow))
            },
        ]
        let smoothness: (Tensor) -> Tensor
        switch r.smoothness {
        case .grad_l2: smoothness = GradientSmoothnessLoss(penalty: .l2).callAsFunction
        case .grad_l1: smoothness = GradientSmoothnessLoss(penalty: .l1).callAsFunction
        case .bending: smoothness = BendingEnergyLoss().callAsFunction
        }
        terms.append(LossTerm(r.smoothness.rawValue, weight: r.smoothnessWeight.schedule) { smoothness($0.flow) })

        // Segmentation terms on the labelled images of [moving; fixed].
        func labelled(_ out: Output) -> [Int] {
            (out.batch.movingLabelled + out.batch.fixedLabelled).indices.filter { (out.batch.movingLabelled + out.batch.fixedLabelled)[$0] }
        }
        let regionalLoss: (Tensor, Tensor) -> Tensor
        switch l.regional {
        case .dice: let f = SoftDiceLoss(includeBackground: l.includeBackground); regionalLoss = { f(logits: $0, labels: $1) }
        case .ce: let f = CrossEntropyLoss(); regionalLoss = { f(logits: $0, labels: $1) }
        case .balanced_ce: let f = BalancedCrossEntropyLoss(); regionalLoss = { f(logits: $0, labels: $1) }
        case .dice_ce: let f = DiceCELoss(includeBackground: l.includeBackground); regionalLoss = { f(logits: $0, labels: $1) }
        }
        let alpha = l.schedule.alphaSchedule
        terms.append(LossTerm(l.regional.rawValue, weight: l.boundary ? alpha.regionalWeight : ConstantWeight(1)) { out in
            let idx = labelled(out)
            guard !idx.isEmpty else { return Tensor(scalar: 0) }
            let labels = Tensor.concat([out.batch.movingLabels, out.batch.fixedLabels], axis: 0)
            return regionalLoss(rows(out.logits, idx), rows(labels, idx))
        })
        if l.boundary {
            let boundary = BoundaryLoss(idc: l.idc)
            terms.append(LossTerm("boundary", weight: alpha.boundaryWeight) { out in
                let idx = labelled(out)
                guard !idx.isEmpty else { return Tensor(scalar: 0) }
                let maps = Tensor.concat([out.batch.movingDistances, out.batch.fixedDistances], axis: 0)
                return boundary(probs: rows(out.logits, idx).softmax(), distanceMaps: rows(maps, idx))
            })
        }
        if l.prlWeight > 0 {
            let prl = PhysicalRegularizationLoss(K: Float(l.prlK))
            terms.append(LossTerm("prl", weight: ConstantWeight(l.prlWeight)) { out in
                let idx = labelled(out)
                guard !idx.isEmpty else { return Tensor(scalar: 0) }
                let probs = rows(out.logits, idx).softmax()
                let labels = rows(Tensor.concat([out.batch.movingLabels, out.batch.fixedLabels], axis: 0), idx)
                let foreground = 1 - probs.slice(axis: 1, 0..<1)
                let target = 1 - oneHot(labels, classes: classes).slice(axis: 1, 0..<1)
                return prl(prediction: foreground, target: target)
            })
        }
        terms.append(LossTerm("coupling", weight: config.joint.couplingWeight.schedule) { out in
            let n = out.batch.fixed.shape[0]
            let probs = out.logits.softmax()
            let movingS = choose(out.batch.movingLabelled, oneHot(out.batch.movingLabels, classes: classes), probs.slice(axis: 0, 0..<n))
            let fixedS = choose(out.batch.fixedLabelled, oneHot(out.batch.fixedLabels, classes: classes), probs.slice(axis: 0, n..<(2 * n)))
            return softDiceLoss(warp(movingS, out.flow), fixedS)
        })
        return try WeightedLoss(terms)
    }

    public var makeBatch: @Sendable (UInt64, Int) -> JointBatch {
        let dataset = self.dataset, n = config.run.training.batchSize, field = config.registration.synthetic
        let cache = distanceCache, classes = self.classes, boundary = config.run.loss.boundary
        let sliceWise = config.run.model.unet.dims == 2
        let strategy = config.joint.strategy, k = config.joint.alternateSteps
        return { seed, step in
            var rng = SeedStream.generator(seed: seed, step)
            var pairs: [PreparedPair] = []
            for _ in 0..<n {
                switch dataset.mode {
                case .synthetic:
                    let x = dataset.images[Int(rng.next() % UInt64(dataset.images.count))]
                    pairs.append(dataset.synthesize(x, field: field, rng: &rng))
                case .random:
                    let count = UInt64(dataset.images.count)
                    let i = Int(rng.next() % count)
                    var j = Int(rng.next() % (count - 1))
                    if j >= i { j += 1 }
                    pairs.append(PreparedPair(fixed: dataset.images[i], moving: dataset.images[j]))
                case .atlas, .listed:
                    pairs.append(dataset.pairs[Int(rng.next() % UInt64(dataset.pairs.count))])
                }
            }
            let phase: JointPhase = strategy == .joint ? .both : ((step / k) % 2 == 0 ? .registration : .segmentation)
            return dataset.jointBatch(pairs, classes: classes, phase: phase) { x in
                guard boundary, let labels = x.labels else { return nil }
                return cache[x.id] ?? Subject.signedDistances(labels, classes: classes, sliceWise: sliceWise)
            }
        }
    }

    /// The `registration:` and `joint:` sections (key `joint`) and the registration section alone
    /// (key `registration`, what `RegistrationModel.load` reads), written into every checkpoint.
    public var checkpointMetadata: [String: String] {
        [
            JointTraining.metadataKey: config.extraYAML,
            RegistrationTraining.metadataKey: ConfigValue.map([("registration", config.registration.resolved)]).yaml(),
        ]
    }

    /// The boundary weight α at `epoch`.
    public func epochScalars(epoch: Int) -> [(name: String, value: Double)] {
        config.run.loss.boundary ? [("alpha", config.run.loss.schedule.alphaSchedule.alpha(epoch: epoch))] : []
    }

    public func loss(_ batch: JointBatch, epoch: Int) -> WeightedLossValue {
        let images = Tensor.concat([batch.moving, batch.fixed], axis: 0)
        let seg = network.segmentation, reg = network.registration
        let logits = batch.phase == .registration ? withoutGradients { seg(images) } : seg(images)
        let flow = batch.phase == .segmentation
            ? withoutGradients { reg(moving: batch.moving, fixed: batch.fixed) } : reg(moving: batch.moving, fixed: batch.fixed)
        return objective(Output(batch: batch, logits: logits, flow: flow), epoch: epoch)
    }

    public func validate() throws -> [(name: String, value: Double)] {
        guard !dataset.validation.isEmpty else { return [] }
        var sums: [String: Double] = [:]
        var order: [String] = []
        func add(_ name: String, _ value: Double) {
            if sums[name] == nil { order.append(name) }
            sums[name, default: 0] += value
        }
        let labels = Array(1..<classes)
        let dims = config.run.model.unet.dims
        let spatial = dims == 3 ? dataset.shape : Array(dataset.shape.dropFirst())
        var segCount = 0
        var segSums = [Double](repeating: 0, count: labels.count)
        for (i, pair) in dataset.validation.enumerated() {
            let batch = dataset.jointBatch([pair], classes: classes, phase: .both) { _ in nil }
            let logits = network.segmentation(Tensor.concat([batch.moving, batch.fixed], axis: 0))
            let predicted = argmaxLabels(logits)
            for (j, reference) in [batch.movingLabels, batch.fixedLabels].enumerated() {
                let p = predicted.slice(axis: 0, j..<(j + 1))
                let scores = RegistrationMetrics.dicePerLabel(reference, p, labels: labels)
                for (c, s) in scores.enumerated() { segSums[c] += s.dice.isFinite ? s.dice : 1 }
                segCount += 1
            }
            let flow = network.registration(moving: batch.moving, fixed: batch.fixed)
            let warpedLabels = warp(batch.movingLabels, flow, mode: .nearest)
            let after = RegistrationMetrics.dicePerLabel(batch.fixedLabels, warpedLabels, labels: labels)
            let before = RegistrationMetrics.dicePerLabel(batch.fixedLabels, batch.movingLabels, labels: labels)
            add("reg_dice_mean", RegistrationMetrics.meanDice(after))
            add("reg_dice_before", RegistrationMetrics.meanDice(before))
            for s in after { add("reg_dice.\(s.label)", s.dice.isFinite ? s.dice : 1) }
            let jac = RegistrationMetrics.jacobianStatistics(ofFlow: flow)
            add("folding_percent", 100 * jac.foldingFraction)
            add("similarity", 1 - Double(config.registration.similarity(batch.fixed, warp(batch.moving, flow)).item))
            if i == 0 {
                lastValidation = (pair.fixed.image, pair.fixed.labels!, Array(predicted.slice(axis: 0, 1..<2).scalars))
            }
            _ = spatial
        }
        let n = Double(dataset.validation.count)
        var out: [(name: String, value: Double)] = []
        let segDice = segSums.map { $0 / Double(segCount) }
        let segMean = segDice.reduce(0, +) / Double(max(segDice.count, 1))
        let regMean = sums["reg_dice_mean"]! / n
        out.append(("dice_mean", (segMean + regMean) / 2))
        out.append(("seg_dice_mean", segMean))
        for (c, d) in zip(labels, segDice) { out.append(("seg_dice.\(c)", d)) }
        out += order.map { ($0, sums[$0]! / n) }
        return out
    }

    /// Class indices `[N, 1, spatial…]` of the largest logit.
    func argmaxLabels(_ logits: Tensor) -> Tensor {
        let n = logits.shape[0], k = logits.shape[1], s = logits.spatialCount
        return Tensor(shape: [n, 1] + logits.spatialShape) { out in
            logits.withUnsafePointer { l in
                for b in 0..<n {
                    for v in 0..<s {
                        var best = 0
                        var top = l[b * k * s + v]
                        for c in 1..<k where l[(b * k + c) * s + v] > top { top = l[(b * k + c) * s + v]; best = c }
                        out[b * s + v] = Float(best)
                    }
                }
            }
        }
    }

    /// The middle slice of the first validation pair's fixed image: its labels (left) and the
    /// U-Net's segmentation (right).
    public func drawOverlay(to path: String) throws {
        guard let (image, labels, predicted) = lastValidation else { return }
        let (d, h, w) = (image.shape[0], image.shape[1], image.shape[2])
        let slice = ((d / 2) * h * w)..<((d / 2 + 1) * h * w)
        func flipped(_ a: ArraySlice<Float>) -> [Float] {
            var out = [Float](); out.reserveCapacity(h * w)
            let base = a.startIndex
            for y in (0..<h).reversed() { out += a[(base + y * w)..<(base + (y + 1) * w)] }
            return out
        }
        try Plots.overlay(
            image: flipped(image.data[slice]), reference: flipped(labels.data[slice]), prediction: flipped(predicted[slice]),
            height: h, width: w
        ).write(to: path)
    }
}

extension RegistrationDataset {
    /// Pairs stacked along N, with per-image label flags; `distances` gives the signed distance
    /// maps of a labelled image (nil: zeros).
    func jointBatch(
        _ pairs: [PreparedPair], classes: Int, phase: JointPhase, distances: (RegistrationImage) -> VoxelArray?
    ) -> JointBatch {
        let spatial = dims == 3 ? shape : Array(shape.dropFirst())
        let n = pairs.count, voxels = shape.reduce(1, *)
        func stack(_ arrays: [VoxelArray]) -> Tensor { Tensor(shape: [n, 1] + spatial, data: arrays.flatMap(\.data)) }
        func labels(_ images: [RegistrationImage]) -> Tensor {
            Tensor(shape: [n, 1] + spatial, data: images.flatMap { $0.labels?.data ?? [Float](repeating: 0, count: voxels) })
        }
        func maps(_ images: [RegistrationImage]) -> Tensor {
            Tensor(shape: [n, classes] + spatial, data: images.flatMap { x in
                x.labels == nil ? [Float](repeating: 0, count: classes * voxels)
                    : distances(x)?.data ?? [Float](repeating: 0, count: classes * voxels)
            })
        }
        let moving = pairs.map(\.moving), fixed = pairs.map(\.fixed)
        return JointBatch(
            moving: stack(moving.map(\.image)), fixed: stack(fixed.map(\.image)), movingLabels: labels(moving),
            fixedLabels: labels(fixed), movingLabelled: moving.map { $0.labels != nil }, fixedLabelled: fixed.map { $0.labels != nil },
            movingDistances: maps(moving), fixedDistances: maps(fixed), phase: phase)
    }
}
