import Foundation
import MorphoDistributed
import MorphoLosses
import MorphoNN
import MorphoTensor

/// Joint segmentation + registration (DeepAtlas, Xu & Niethammer 2019) as a `TrainingTask`.
/// Per pair (moving M, fixed F) with the field u = reg(M, F) and the U-Net's softmax S(·):
///
///     w_sim · L_sim(F, M∘(id+u)) + w_smooth · R(u)                          registration
///   + w_R(e) · regional(S, L) + α(e) · boundary(S, φ_L) + λ_PRL · PRL(S_fg, L_fg)   over labelled images
///   + w_c · (1 − Dice(Ŝ_M∘(id+u), Ŝ_F))                                      coupling
///   + w_wl · L_wl (only when joint.warped_labels.weight > 0)                  warped labels
///   + w_wp · [w_R(e) · regional_soft(S(M∘(id+u)), onehot(L_M)∘(id+u))
///             + α(e) · boundary(S(M∘(id+u)), φ_M∘(id+u))]  over labelled M    warped pairs
///
/// where Ŝ is the one-hot ground truth of a labelled image and S of an unlabelled one, the warp
/// is linear (gradients reach both networks). The coupling term is DeepAtlas' anatomy loss (the
/// anatomy-aware similarity, segmentations standing in for missing labels);
/// `L_wl = −(1/(N·|Ω|)) Σ_{i: M_i labelled, F_i not} Σ_v Σ_c T_ic(v) log S_c(F_i)(v)` with
/// `T_i = onehot(L_{M_i})∘(id+u_i)` makes the warped labels of a labelled moving image a soft
/// target of the U-Net on the unlabelled fixed image (u detached unless
/// `joint.warped_labels.detach: false`; `warpedLabelsLoss`). `w_R`, `α` follow `loss.schedule` (rebalance:
/// `max(floor, 1 − α_e)`, `α_e = min(cap, α0 + e·Δ)`), the registration weights and terms come
/// from `registration.loss`, `w_c` from `joint.coupling.weight`. The boundary term reads signed
/// distance maps cached once per labelled image (computed per batch only for synthetic pairs,
/// which are new images every time). Segmentation terms of a batch without labelled images are 0.
///
/// `joint.warped_pairs` (`JointWarpedPairs.swift`): every labelled moving image, warped with its
/// labels by its pair's field (detached), and those of `extra` extra pairs, train the U-Net as
/// exact image–label pairs — registration as learned augmentation.
///
/// `joint.segmentation_batch: S` adds S labelled-only samples to every batch (the U-Net's input
/// becomes `[moving; fixed; S samples]`): labelled training images drawn uniformly with
/// replacement, each augmented, from the stream `(seed, step, j, segmentationStream)`; they enter
/// the segmentation terms only, which then average over the pairs' labelled images and these S.
///
/// `data.augmentation` (the segmentation pipeline's `SampleAugmentation`) is applied to every
/// training image before pairing — with `joint.pair_augmentation: independent` (default) moving
/// and fixed each from its own stream `(seed, step, k, augmentationStream + side)`, with `shared`
/// both from the moving image's stream (one transform per pair), with `none` not at all (then only
/// the segmentation-only samples are augmented) — so batches stay pure functions of
/// `(seed, step)` and a resumed run draws the same augmentations — on the loader threads (`makeShard`): labels
/// nearest, cached distance maps resampled with the image (× zoom), PRL target fluxes recomputed
/// from the augmented labels. Validation pairs are never augmented.
///
/// Data-parallel (`mpirun`): pair k of a batch comes from its own stream, and each rank scales
/// its segmentation terms by `DataParallel.itemShare` of its labelled images among the global
/// batch's (`JointBatch.globalLabelled`), so the all-reduced gradient and logged terms are those
/// of one process on the global batch even when the ranks hold different numbers of labelled
/// images. Validation is shared out by pair (`validateShard`).
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
    /// The PRL target's `[div_I; div_J]` of the labelled images by image id (2 · voxels floats).
    let fluxCache: [String: [Float]]
    let objective: WeightedLoss<Output>
    /// `data.augmentation` applied to every training image before pairing, on the loader; nil
    /// when it is the identity.
    let augmenter: SampleAugmentation?
    private var lastValidation: (image: VoxelArray, labels: VoxelArray, predicted: [Float])?

    public var model: any Module { network }
    public var overview: String {
        let d = dataset
        let labelled = d.images.filter { $0.labels != nil }.count
        return "\(d.images.count) training images (\(labelled) labelled, \(d.mode.rawValue) pairs), \(d.validation.count) validation pairs "
            + "on a \(d.shape.map(String.init).joined(separator: "×")) grid; U-Net \(network.segmentation.parameterCount) + "
            + "DisplacementNet \(network.registration.parameterCount) parameters; \(config.joint.strategy.rawValue) strategy"
    }
    public var scoreName: String { "dice_mean" }

    struct Output {
        var batch: JointBatch
        var logits: Tensor
        /// `logits.softmax()`, computed once per step for the boundary, PRL and coupling terms
        /// (rows of it equal the softmax of the same rows of the logits).
        var probs: Tensor
        var flow: Tensor
        /// The factor of the segmentation terms: this batch's share of the global batch's
        /// labelled images relative to its share of the pairs (`DataParallel.itemShare`; 1 in one
        /// process).
        var labelledShare: Float
        /// Rows of `[moving; fixed]` that have a label map (`JointBatch.labelledRows`), and the
        /// logits and probabilities of those rows: what every segmentation term reads, gathered
        /// once per step.
        let labelledRows: [Int]
        let labelledLogits: Tensor
        let labelledProbs: Tensor
        /// The moving image warped by the flow (`[N, C, spatial…]`), for the similarity term.
        let warpedMoving: Tensor
        /// The foreground channels (1..<classes) of the moving segmentation — one-hot labels where
        /// the moving image has them, the U-Net's probabilities otherwise — warped by the flow, and
        /// the same channels of the fixed segmentation: the coupling term's two sides (the U-Net's
        /// probabilities detached when `detachSegmentation`: `joint.coupling.detach_segmentation`).
        let warpedMovingSegmentation: Tensor
        let fixedSegmentation: Tensor
        /// The warped-pairs terms' samples (`joint.warped_pairs`; nil when off or none in the batch).
        var warpedPairs: JointWarpedPairOutput? = nil

        init(
            batch: JointBatch, logits: Tensor, probs: Tensor, flow: Tensor, labelledShare: Float, classes: Int,
            detachSegmentation: Bool = false
        ) {
            (self.batch, self.logits, self.probs, self.flow, self.labelledShare) = (batch, logits, probs, flow, labelledShare)
            labelledRows = batch.labelledRows
            (labelledLogits, labelledProbs) = labelledRows.isEmpty
                ? (Tensor(scalar: 0), Tensor(scalar: 0))
                : (JointTask.rows(logits, labelledRows), JointTask.rows(probs, labelledRows))
            // Foreground channels only: the coupling Dice ignores the background, so it is not warped.
            let n = batch.fixed.shape[0], fg = 1..<classes
            let couplingProbs = detachSegmentation ? probs.detached() : probs
            let movingS = JointTask.choose(batch.movingLabelled, { batch.movingForeground },
                                           { couplingProbs.slice(axis: 0, 0..<n).slice(axis: 1, fg) })
            fixedSegmentation = JointTask.choose(batch.fixedLabelled, { batch.fixedForeground },
                                                 { couplingProbs.slice(axis: 0, n..<(2 * n)).slice(axis: 1, fg) })
            // Two warps rather than one of `[image; segmentation]`: the concatenation, the two
            // channel slices and their padded gradients cost more than the second pass's
            // coordinates (the shared pass made the joint step 9.6 ms slower: median per-round
            // difference over 16 interleaved rounds).
            warpedMoving = warp(batch.moving, flow)
            warpedMovingSegmentation = warp(movingS, flow)
        }

        /// A segmentation term (a mean over this batch's labelled images) as its part of the
        /// global batch's mean.
        func shared(_ term: Tensor) -> Tensor { labelledShare == 1 ? term : term * labelledShare }
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
        if config.joint.segmentationBatch > 0 && !dataset.images.contains(where: { $0.labels != nil }) {
            throw MorphoTrainError.config(
                file: run.name, key: "joint.segmentation_batch", message: "needs labelled training images, but none keeps its labels")
        }
        if config.joint.warpedPairsOn && !dataset.images.contains(where: { $0.labels != nil }) {
            throw MorphoTrainError.config(
                file: run.name, key: "joint.warped_pairs.weight", message: "needs labelled training images, but none keeps its labels")
        }
        if config.joint.warpedPairsOn && config.joint.warpedPairsExtra > 0 && dataset.images.count < 2 {
            throw MorphoTrainError.config(
                file: run.name, key: "joint.warped_pairs.extra", message: "extra pairs need at least 2 training images")
        }
        guard dataset.validation.allSatisfy({ $0.fixed.labels != nil && $0.moving.labels != nil }) else {
            throw MorphoTrainError.config(file: run.name, key: "data", message: "every validation image needs a label map")
        }
        self.dataset = dataset
        let sliceWise = run.model.unet.dims == 2
        // Label-map constants (signed distance maps, PRL target fluxes), once per labelled image;
        // synthetic pairs are new images every time and get theirs per batch.
        var distances: [String: VoxelArray] = [:], fluxes: [String: [Float]] = [:]
        if dataset.mode != .synthetic {
            let prl = run.loss.prlWeight > 0 ? PhysicalRegularizationLoss(K: Float(run.loss.prlK)) : nil
            for x in dataset.images + dataset.pairs.flatMap({ [$0.fixed, $0.moving] }) {
                guard let l = x.labels else { continue }
                if run.loss.boundary && distances[x.id] == nil {
                    distances[x.id] = Subject.signedDistances(l, classes: classes, sliceWise: sliceWise)
                }
                if let prl, fluxes[x.id] == nil { fluxes[x.id] = Self.prlTargetFluxes(l, prl, spatial: spatial) }
            }
        }
        distanceCache = distances
        fluxCache = fluxes
        network = JointModel(segmentation: makeUNet(run), registration: makeDisplacementNet(config.registrationRun))
        objective = try Self.makeObjective(config, classes: classes)
        let augmentation = run.data.augmentation
        // Registration data is prepared with slice axis z: the network order is the volume's (z, y, x).
        augmenter = augmentation.isIdentity ? nil : SampleAugmentation(augmentation, order: [0, 1, 2], dims: run.model.unet.dims)
    }

    /// Loads the data set (`RegistrationDataset.load`: pre-alignment maps cached in
    /// `cacheFolder`, logged to `log`).
    public convenience init(config: JointRunConfig, cacheFolder: String? = nil, log: @escaping (String) -> Void = { _ in }) throws {
        try self.init(config: config, dataset: RegistrationDataset.load(config.registrationRun, cacheFolder: cacheFolder, log: log))
    }

    /// `[div_I; div_J]` of the PRL target of a label map (foreground `1 − onehot(label)₀`), on the
    /// networks' grid `spatial`: constants of training, computed once per labelled image.
    static func prlTargetFluxes(_ labels: VoxelArray, _ prl: PhysicalRegularizationLoss, spatial: [Int]) -> [Float] {
        let target = 1 - oneHot(Tensor(shape: [1, 1] + spatial, data: labels.data), class: 0)
        let (divI, divJ) = prl.targetFluxes(target)
        return divI.scalars + divJ.scalars
    }

    /// Rows `indices` of `t` along N (differentiable).
    static func rows(_ t: Tensor, _ indices: [Int]) -> Tensor {
        if indices.count == t.shape[0] && indices == Array(0..<t.shape[0]) { return t }
        return Tensor.concat(indices.map { t.slice(axis: 0, $0..<($0 + 1)) }, axis: 0)
    }

    /// Per row: `a`'s row where `useA[i]`, else `b`'s (each built only if a row is taken from it).
    static func choose(_ useA: [Bool], _ a: () -> Tensor, _ b: () -> Tensor) -> Tensor {
        if useA.allSatisfy({ $0 }) { return a() }
        if !useA.contains(true) { return b() }
        let (a, b) = (a(), b())
        return Tensor.concat(useA.indices.map { i in (useA[i] ? a : b).slice(axis: 0, i..<(i + 1)) }, axis: 0)
    }

    static func makeObjective(_ config: JointRunConfig, classes: Int) throws -> WeightedLoss<Output> {
        let r = config.registration, l = config.run.loss
        var terms: [LossTerm<Output>] = RegistrationTask.fieldTerms(
            r, fixed: { $0.batch.fixed }, warped: { $0.warpedMoving }, flow: { $0.flow })

        // Segmentation terms on the labelled images of [moving; fixed] (`Output.labelledRows`).
        let regionalLoss: (Tensor, Tensor) -> Tensor
        switch l.regional {
        case .dice: let f = SoftDiceLoss(includeBackground: l.includeBackground); regionalLoss = { f(logits: $0, labels: $1) }
        case .ce: let f = CrossEntropyLoss(); regionalLoss = { f(logits: $0, labels: $1) }
        case .balanced_ce: let f = BalancedCrossEntropyLoss(); regionalLoss = { f(logits: $0, labels: $1) }
        case .dice_ce: let f = DiceCELoss(includeBackground: l.includeBackground); regionalLoss = { f(logits: $0, labels: $1) }
        }
        let alpha = l.schedule.alphaSchedule
        terms.append(LossTerm(l.regional.rawValue, weight: l.boundary ? alpha.regionalWeight : ConstantWeight(1)) { out in
            guard !out.labelledRows.isEmpty else { return Tensor(scalar: 0) }
            return out.shared(regionalLoss(out.labelledLogits, out.batch.labelledLabels))
        })
        if l.boundary {
            let boundary = BoundaryLoss(idc: l.idc)
            terms.append(LossTerm("boundary", weight: alpha.boundaryWeight) { out in
                guard !out.labelledRows.isEmpty else { return Tensor(scalar: 0) }
                return out.shared(boundary(probs: out.labelledProbs, distanceMaps: out.batch.labelledDistances))
            })
        }
        if l.prlWeight > 0 {
            let prl = PhysicalRegularizationLoss(K: Float(l.prlK))
            terms.append(LossTerm("prl", weight: ConstantWeight(l.prlWeight)) { out in
                guard !out.labelledRows.isEmpty else { return Tensor(scalar: 0) }
                let foreground = 1 - out.labelledProbs.slice(axis: 1, 0..<1)
                return out.shared(prl(prediction: foreground, targetFluxes: out.batch.labelledFluxes))
            })
        }
        terms.append(LossTerm("coupling", weight: config.joint.couplingWeight.schedule) { out in
            ProbabilityDiceLoss(smooth: 1e-5)(out.warpedMovingSegmentation, out.fixedSegmentation)
        })
        let j = config.joint
        if j.warpedLabelsWeight.start > 0 || j.warpedLabelsWeight.step > 0 {
            let detach = j.warpedLabelsDetach
            terms.append(LossTerm("warped_labels", weight: j.warpedLabelsWeight.schedule) { out in
                warpedLabelsLoss(out, detach: detach)
            })
        }
        if j.warpedPairsOn { terms += warpedPairTerms(config) }
        return try WeightedLoss(terms)
    }

    /// The warped-labels term `L_wl` (`JointConfig.warpedLabelsWeight`): the soft cross-entropy of
    /// the U-Net on each unlabelled fixed image against the one-hot labels of its labelled moving
    /// image warped by the pair's field (detached when `detach`), a mean over the batch's N pairs
    /// and voxels; a scalar 0 when no pair has a labelled moving and an unlabelled fixed image.
    static func warpedLabelsLoss(_ out: Output, detach: Bool) -> Tensor {
        let b = out.batch, n = b.fixed.shape[0]
        let targets = b.movingLabelled.indices.map { b.movingLabelled[$0] && !b.fixedLabelled[$0] }
        guard targets.contains(true) else { return Tensor(scalar: 0) }
        // Foreground channels T_c, c ≥ 1, of the warped one-hot moving labels (rows of moving
        // images without labels are zero and masked out below).
        let foreground = detach || !b.movingLabelled.allSatisfy({ $0 })
            ? warp(b.movingForeground, detach ? out.flow.detached() : out.flow)
            : out.warpedMovingSegmentation
        let logS = out.logits.slice(axis: 0, n..<(2 * n)).logSoftmax()
        let k = logS.shape[1]
        let perVoxel = (1 - foreground.sum(axes: [1], keepDims: true)) * logS.slice(axis: 1, 0..<1)
            + (foreground * logS.slice(axis: 1, 1..<k)).sum(axes: [1], keepDims: true)
        let mask = Tensor(shape: [n, 1] + Array(repeating: 1, count: perVoxel.rank - 2), data: targets.map { $0 ? 1 : 0 })
        return -(perVoxel * mask).mean()
    }

    /// The whole global batch: `makeShard` at positions `0..<training.batch_size`.
    public var makeBatch: @Sendable (UInt64, Int) -> JointBatch {
        let shard = makeShardedBatch, n = config.run.training.batchSize
        return { seed, step in shard(seed, step, Array(0..<n)) }
    }

    public var makeShard: (@Sendable (UInt64, Int, [Int]) -> JointBatch)? { makeShardedBatch }

    /// Pair k of batch `step` from its own stream `(seed, step, k)`, so any split of the batch
    /// over ranks draws the same pairs; the global batch's labelled images are counted from the
    /// same draws without building the other ranks' pairs.
    var makeShardedBatch: @Sendable (UInt64, Int, [Int]) -> JointBatch {
        let dataset = self.dataset, n = config.run.training.batchSize, field = config.registration.synthetic
        let cache = distanceCache, classes = self.classes, boundary = config.run.loss.boundary
        let sliceWise = config.run.model.unet.dims == 2
        let fluxCache = self.fluxCache, l = config.run.loss
        let spatial = sliceWise ? Array(dataset.shape.dropFirst()) : dataset.shape
        let prl: PhysicalRegularizationLoss? = l.prlWeight > 0 ? PhysicalRegularizationLoss(K: Float(l.prlK)) : nil
        let strategy = config.joint.strategy, k = config.joint.alternateSteps
        let augmenter = self.augmenter, pairAugmentation = config.joint.pairAugmentation
        let extras = config.joint.segmentationBatch
        let pool = dataset.images.filter { $0.labels != nil }
        let warpedPairsOn = config.joint.warpedPairsOn, warpedExtras = config.joint.warpedPairsExtra
        let labelledIndices = dataset.images.indices.filter { dataset.images[$0].labels != nil }
        return { seed, step, positions in
            var pairs = positions.map { dataset.trainingPair(seed: seed, step: step, k: $0, field: field) }
            let labelled = Self.labelledImages(dataset, seed: seed, step: step, positions: Array(0..<n)) + extras
            let phase: JointPhase = strategy == .joint ? .both : ((step / k) % 2 == 0 ? .registration : .segmentation)
            // Augmented images get new ids and carry their own maps (`augmentedDistances`).
            var augmentedDistances: [String: VoxelArray] = [:]
            func augmented(_ x: RegistrationImage, id: String, rng: inout RandomGenerator) -> RegistrationImage {
                guard let augmenter else { return x }
                let distances = boundary && x.labels != nil ? cache[x.id] : nil
                let (image, d) = Self.augment(
                    x, distances: distances, augmenter: augmenter, id: id, classes: boundary ? classes : nil, sliceWise: sliceWise, rng: &rng)
                if let d { augmentedDistances[image.id] = d }
                return image
            }
            if pairAugmentation != .none {
                for (i, position) in positions.enumerated() {
                    for side in 0..<2 {
                        let x = side == 0 ? pairs[i].moving : pairs[i].fixed
                        // `shared`: both images replay the moving image's draw.
                        let stream = Self.augmentationStream + (pairAugmentation == .shared ? 0 : side)
                        var rng = SeedStream.generator(seed: seed, step, position, stream)
                        let image = augmented(x, id: "\(x.id)~\(step).\(position).\(side)", rng: &rng)
                        if side == 0 { pairs[i].moving = image } else { pairs[i].fixed = image }
                    }
                }
            }
            // Segmentation-only sample j of the global batch belongs to the shard holding pair
            // position j mod N, and draws its image and augmentation from its own stream.
            let segmentationOnly = (0..<extras).filter { positions.contains($0 % n) }.map { j -> RegistrationImage in
                var rng = SeedStream.generator(seed: seed, step, j, Self.segmentationStream)
                let x = pool[Int(rng.next() % UInt64(pool.count))]
                return augmented(x, id: "\(x.id)~\(step).s\(j)", rng: &rng)
            }
            let fluxes = prl.map { prl in
                { (x: RegistrationImage) -> [Float]? in
                    x.labels.map { fluxCache[x.id] ?? Self.prlTargetFluxes($0, prl, spatial: spatial) }
                }
            }
            func distances(_ x: RegistrationImage) -> VoxelArray? {
                guard boundary, let labels = x.labels else { return nil }
                return augmentedDistances[x.id] ?? cache[x.id] ?? Subject.signedDistances(labels, classes: classes, sliceWise: sliceWise)
            }
            var batch = dataset.jointBatch(
                pairs, segmentationOnly: segmentationOnly, classes: classes, phase: phase, globalPairs: n, globalLabelled: labelled,
                fluxes: fluxes, distances: distances)
            if warpedPairsOn {
                // Extra pair j belongs to the shard holding pair position j mod N, as the
                // segmentation-only samples do; the global W is counted from the same draws.
                let extraPairs = (0..<warpedExtras).filter { positions.contains($0 % n) }.map {
                    Self.extraWarpedPair(dataset.images, labelled: labelledIndices, seed: seed, step: step, j: $0)
                }
                let global = (0..<n).filter { dataset.trainingPairLabels(seed: seed, step: step, k: $0).moving }.count + warpedExtras
                batch.warpedPairs = JointWarpedPairSources.make(
                    pairs: pairs, extras: extraPairs, spatial: spatial, classes: classes, globalCount: global, distances: distances)
            }
            return batch
        }
    }

    /// The last path element of the augmentation streams: image `side` (0 moving, 1 fixed) of
    /// pair k of batch `step` draws from `(seed, step, k, augmentationStream + side)`, apart from
    /// the pair's own stream `(seed, step, k)`.
    static let augmentationStream = 0x6A75_6700

    /// The last path element of the segmentation-only streams: sample j of batch `step` draws its
    /// labelled image and its augmentation from `(seed, step, j, segmentationStream)`.
    static let segmentationStream = 0x6A75_6800

    /// `x` augmented as a whole image (`SampleAugmentation`, origin 0, its own shape), renamed
    /// `id`, and its signed distance maps when `classes` is set and it is labelled: `distances`
    /// (the cached maps of `x`) augmented along with it, or, without cached maps, computed from
    /// the augmented labels.
    static func augment(
        _ x: RegistrationImage, distances: VoxelArray?, augmenter: SampleAugmentation, id: String, classes: Int?,
        sliceWise: Bool, rng: inout RandomGenerator
    ) -> (image: RegistrationImage, distances: VoxelArray?) {
        let s = augmenter.sample(
            image: x.image, labels: x.labels, distances: distances, origin: [0, 0, 0], size: x.image.shape,
            imageFill: [0], augment: true, rng: &rng)
        var d = s.distances
        if d == nil, let classes, let labels = s.labels {
            d = Subject.signedDistances(labels, classes: classes, sliceWise: sliceWise)
        }
        return (RegistrationImage(id: id, image: s.image, labels: s.labels), d)
    }

    /// Labelled images (moving and fixed) of the training pairs at `positions` of batch `step`.
    static func labelledImages(_ dataset: RegistrationDataset, seed: UInt64, step: Int, positions: [Int]) -> Int {
        positions.reduce(0) { count, k in
            let flags = dataset.trainingPairLabels(seed: seed, step: step, k: k)
            return count + (flags.moving ? 1 : 0) + (flags.fixed ? 1 : 0)
        }
    }

    /// The `registration:` and `joint:` sections (key `joint`) and the registration section alone
    /// (key `registration`, what `RegistrationModel.load` reads), written into every checkpoint.
    public var checkpointMetadata: [String: String] {
        [
            Checkpoint.jointSectionKey: config.extraYAML,
            Checkpoint.registrationSectionKey: ConfigValue.map([("registration", config.registration.resolved)]).yaml(),
        ]
    }

    /// The boundary weight α at `epoch`.
    public func epochScalars(epoch: Int) -> [(name: String, value: Double)] {
        config.run.loss.boundary ? [("alpha", config.run.loss.schedule.alphaSchedule.alpha(epoch: epoch))] : []
    }

    public func loss(_ batch: JointBatch, epoch: Int) -> WeightedLossValue {
        let seg = network.segmentation, reg = network.registration
        let logits = batch.phase == .registration ? withoutGradients { seg(batch.images) } : seg(batch.images)
        let flow = batch.phase == .segmentation
            ? withoutGradients { reg(moving: batch.moving, fixed: batch.fixed) } : reg(moving: batch.moving, fixed: batch.fixed)
        let share = DataParallel.itemShare(
            localItems: batch.labelledCount, globalItems: batch.globalLabelled, localSamples: batch.fixed.shape[0],
            globalSamples: batch.globalPairs)
        var output = Output(batch: batch, logits: logits, probs: logits.softmax(), flow: flow, labelledShare: share, classes: classes,
            detachSegmentation: config.joint.couplingDetachSegmentation)
        if let sources = batch.warpedPairs {
            output.warpedPairs = warpedPairs(
                sources, flow: flow, localPairs: batch.fixed.shape[0], globalPairs: batch.globalPairs, trainUNet: batch.phase != .registration)
        }
        return objective(output, epoch: epoch)
    }

    public func validate() throws -> [(name: String, value: Double)] {
        DataParallel().meanOverSamples(try validateShard(rank: 0, size: 1) ?? [])
    }

    /// One row per validation pair `i` with `i % size == rank`, whose means over pairs are the
    /// metrics: `dice_mean` (the pair's `(seg_dice_mean + reg_dice_mean) / 2`), `seg_dice_mean`
    /// and `seg_dice.k` (U-Net Dice of the moving and fixed image, their mean; the mean over the
    /// foreground classes), `reg_dice_mean`, `reg_dice_before`, `reg_dice.k`, `folding_percent`,
    /// `similarity`. A class absent from both label maps scores Dice 1.
    public func validateShard(rank: Int, size: Int) throws -> [[(name: String, value: Double)]]? {
        let labels = Array(1..<classes)
        var rows: [[(name: String, value: Double)]] = []
        for i in stride(from: rank, to: dataset.validation.count, by: size) {
            let pair = dataset.validation[i]
            let batch = dataset.jointBatch([pair], classes: classes, phase: .both) { _ in nil }
            let logits = network.segmentation(batch.images)
            let predicted = argmaxLabels(logits)
            var segDice = [Double](repeating: 0, count: labels.count)
            for (j, reference) in [batch.movingLabels, batch.fixedLabels].enumerated() {
                let scores = RegistrationMetrics.dicePerLabel(reference, predicted.slice(axis: 0, j..<(j + 1)), labels: labels)
                for (c, s) in scores.enumerated() { segDice[c] += (s.dice.isFinite ? s.dice : 1) / 2 }
            }
            let segMean = segDice.reduce(0, +) / Double(max(segDice.count, 1))
            let flow = network.registration(moving: batch.moving, fixed: batch.fixed)
            let warpedLabels = warp(batch.movingLabels, flow, mode: .nearest)
            let after = RegistrationMetrics.dicePerLabel(batch.fixedLabels, warpedLabels, labels: labels)
            let before = RegistrationMetrics.dicePerLabel(batch.fixedLabels, batch.movingLabels, labels: labels)
            let regMean = RegistrationMetrics.meanDice(after)
            var row: [(name: String, value: Double)] = [("dice_mean", (segMean + regMean) / 2), ("seg_dice_mean", segMean)]
            row += zip(labels, segDice).map { ("seg_dice.\($0)", $1) }
            row += [("reg_dice_mean", regMean), ("reg_dice_before", RegistrationMetrics.meanDice(before))]
            row += after.map { ("reg_dice.\($0.label)", $0.dice.isFinite ? $0.dice : 1) }
            let jac = RegistrationMetrics.jacobianStatistics(ofFlow: flow)
            row.append(("folding_percent", 100 * jac.foldingFraction))
            row.append(("similarity", 1 - Double(config.registration.similarity(batch.fixed, warp(batch.moving, flow)).item)))
            if i == 0 {
                lastValidation = (pair.fixed.image, pair.fixed.labels!, Array(predicted.slice(axis: 0, 1..<2).scalars))
            }
            rows.append(row)
        }
        return rows
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
        try Plots.middleSliceOverlay(image: image.data, reference: labels.data, prediction: predicted, shape: image.shape).write(to: path)
    }
}
