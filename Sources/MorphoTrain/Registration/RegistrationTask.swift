import Foundation
import MorphoDistributed
import MorphoLosses
import MorphoNN
import MorphoTensor

/// Builds the `DisplacementNet` a registration config describes (weights from `training.seed`).
public func makeDisplacementNet(_ config: RegistrationRunConfig) -> DisplacementNet {
    let n = config.registration.network
    var rng = SeedStream.generator(seed: config.run.training.seed, 0x5658_4D44)
    return DisplacementNet(
        spatialRank: config.run.model.dims, inChannels: 2, encoderWidths: n.encoder, decoderWidths: n.decoder,
        integrationSteps: n.integrationSteps, halfResolution: n.halfResolution, rng: &rng)
}

/// One training batch: `[N, 1, spatial…]` images and (optional) class-index label maps.
public struct RegistrationBatch: Sendable {
    public var fixed: Tensor
    public var moving: Tensor
    public var fixedLabels: Tensor?
    public var movingLabels: Tensor?
    /// The label maps' one-hot foreground channels `[N, classes − 1, spatial…]` (what the Dice
    /// term warps and scores), built with the batch on the loader; nil without labels.
    public var fixedForeground: Tensor?
    public var movingForeground: Tensor?
}

/// Unsupervised (optionally semi-supervised) deformable registration as a `TrainingTask`
/// (VoxelMorph, Balakrishnan et al. 2019): `DisplacementNet` on the concatenated (moving, fixed)
/// pair predicts a field `u`, and the loss is
///
///     w_sim(e) · L_sim(F, M∘(id + u)) + w_smooth(e) · R(u) [+ w_dice(e) · Dice(onehot(L_M)∘(id + u), L_F)]
///
/// with the similarity (LCC with a window, GCC or MSE), the regulariser (grad-l2, grad-l1 or
/// bending) and weight schedules of `registration.loss`. Validation registers the fixed
/// validation pairs and reports `dice_mean` (warped moving labels vs fixed labels, mean over
/// foreground labels; the score when labels exist), `dice.k`, `dice_before`, `folding_percent`
/// (det J ≤ 0), `log_jacobian_std`, and `similarity` / `similarity_before` (1 − the similarity
/// loss; the score without labels).
public final class RegistrationTask: TrainingTask {
    public typealias Batch = RegistrationBatch

    public let config: RegistrationRunConfig
    public let dataset: RegistrationDataset
    public let network: DisplacementNet
    let objective: WeightedLoss<Output>
    private var lastValidation: (pair: PreparedPair, warpedLabels: Tensor?, warped: Tensor)?

    public var model: any Module { network }
    public var overview: String {
        let d = dataset
        let source = d.mode == .atlas || d.mode == .listed
            ? "\(d.pairs.count) training pairs" : "\(d.images.count) training images (\(d.mode.rawValue) pairs)"
        return "\(source), \(d.validation.count) validation pairs on a \(d.shape.map(String.init).joined(separator: "×")) grid; "
            + "DisplacementNet with \(network.parameterCount) parameters"
    }
    public var scoreName: String { dataset.classes > 1 ? "dice_mean" : "similarity" }
    /// The resolved `registration:` section, so every checkpoint rebuilds its network alone.
    public var checkpointMetadata: [String: String] {
        [Checkpoint.registrationSectionKey: ConfigValue.map([("registration", config.registration.resolved)]).yaml()]
    }

    struct Output {
        var batch: RegistrationBatch
        var flow: Tensor
        var warped: Tensor
    }

    public init(config: RegistrationRunConfig, dataset: RegistrationDataset) throws {
        self.config = config
        self.dataset = dataset
        network = makeDisplacementNet(config)
        objective = try Self.makeObjective(config.registration, classes: dataset.classes)
    }

    /// Loads the data set (`RegistrationDataset.load`: pre-alignment maps cached in
    /// `cacheFolder`, logged to `log`).
    public convenience init(config: RegistrationRunConfig, cacheFolder: String? = nil, log: @escaping (String) -> Void = { _ in }) throws {
        try self.init(config: config, dataset: RegistrationDataset.load(config, cacheFolder: cacheFolder, log: log))
    }

    /// The registration terms every task with a field trains (this one and `JointTask`):
    /// `w_sim(e) · similarity(F, M∘(id+u)) + w_smooth(e) · R(u)`, named after their kinds.
    static func fieldTerms<Input>(
        _ r: RegistrationConfig, fixed: @escaping (Input) -> Tensor, warped: @escaping (Input) -> Tensor,
        flow: @escaping (Input) -> Tensor
    ) -> [LossTerm<Input>] {
        let similarity = r.similarity
        let smoothness: (Tensor) -> Tensor
        switch r.smoothness {
        case .grad_l2: smoothness = GradientSmoothnessLoss(penalty: .l2).callAsFunction
        case .grad_l1: smoothness = GradientSmoothnessLoss(penalty: .l1).callAsFunction
        case .bending: smoothness = BendingEnergyLoss().callAsFunction
        }
        return [
            LossTerm(similarity.kind.rawValue, weight: r.similarityWeight.schedule) { similarity(fixed($0), warped($0)) },
            LossTerm(r.smoothness.rawValue, weight: r.smoothnessWeight.schedule) { smoothness(flow($0)) },
        ]
    }

    /// Whether the objective reads the batch's label maps: only the semi-supervised Dice term
    /// does, so training batches carry them (and their one-hot foregrounds) only with it — at
    /// 160×192×224 with three classes, 160 MB per pair a step would otherwise hold for nothing.
    static func readsLabels(_ r: RegistrationConfig) -> Bool { r.diceWeight.start > 0 || r.diceWeight.step > 0 }

    static func makeObjective(_ r: RegistrationConfig, classes: Int) throws -> WeightedLoss<Output> {
        var terms: [LossTerm<Output>] = fieldTerms(r, fixed: { $0.batch.fixed }, warped: { $0.warped }, flow: { $0.flow })
        if readsLabels(r) {
            guard classes > 1 else {
                throw MorphoTrainError.invalidOption(key: "registration.loss.dice.weight", reason: "the Dice term needs label maps in the data")
            }
            terms.append(LossTerm("dice", weight: r.diceWeight.schedule) { out in
                // Foreground channels only: the Dice ignores the background, so it is not warped.
                ProbabilityDiceLoss(smooth: 1e-5)(warp(out.batch.movingForeground!, out.flow), out.batch.fixedForeground!)
            })
        }
        return try WeightedLoss(terms)
    }

    /// The whole global batch: `makeShard` at positions `0..<training.batch_size`.
    public var makeBatch: @Sendable (UInt64, Int) -> RegistrationBatch {
        let shard = makeShardedBatch, n = config.run.training.batchSize
        return { seed, step in shard(seed, step, Array(0..<n)) }
    }

    public var makeShard: (@Sendable (UInt64, Int, [Int]) -> RegistrationBatch)? { makeShardedBatch }

    /// Pair k of batch `step` from its own stream `(seed, step, k)`, so any split of the batch
    /// over ranks draws the same pairs. Label maps only when the objective reads them.
    var makeShardedBatch: @Sendable (UInt64, Int, [Int]) -> RegistrationBatch {
        let dataset = self.dataset, field = config.registration.synthetic, labels = Self.readsLabels(config.registration)
        return { seed, step, positions in
            let pairs = positions.map { k in dataset.trainingPair(seed: seed, step: step, k: k, field: field) }
            return dataset.batch(pairs, labels: labels)
        }
    }

    public func loss(_ batch: RegistrationBatch, epoch: Int) -> WeightedLossValue {
        let flow = network(moving: batch.moving, fixed: batch.fixed)
        return objective(Output(batch: batch, flow: flow, warped: warp(batch.moving, flow)), epoch: epoch)
    }

    public func validate() throws -> [(name: String, value: Double)] {
        DataParallel().meanOverSamples(try validateShard(rank: 0, size: 1) ?? [])
    }

    /// One row per validation pair `i` with `i % size == rank`, the metrics `validate()` averages.
    public func validateShard(rank: Int, size: Int) throws -> [[(name: String, value: Double)]]? {
        var rows: [[(name: String, value: Double)]] = []
        for i in stride(from: rank, to: dataset.validation.count, by: size) {
            let pair = dataset.validation[i]
            var row: [(name: String, value: Double)] = []
            func add(_ name: String, _ value: Double) { row.append((name, value)) }
            let batch = dataset.batch([pair])
            let flow = network(moving: batch.moving, fixed: batch.fixed)
            let warped = warp(batch.moving, flow)
            let similarity = config.registration.similarity
            var warpedLabels: Tensor?
            if let fl = batch.fixedLabels, let ml = batch.movingLabels, dataset.classes > 1 {
                let labels = Array(1..<dataset.classes)
                let wl = warp(ml, flow, mode: .nearest)
                warpedLabels = wl
                let before = RegistrationMetrics.dicePerLabel(fl, ml, labels: labels)
                let after = RegistrationMetrics.dicePerLabel(fl, wl, labels: labels)
                add("dice_mean", RegistrationMetrics.meanDice(after))
                add("dice_before", RegistrationMetrics.meanDice(before))
                for s in after { add("dice.\(s.label)", s.dice.isFinite ? s.dice : 1) }
            }
            let jac = RegistrationMetrics.jacobianStatistics(ofFlow: flow)
            add("folding_percent", 100 * jac.foldingFraction)
            add("log_jacobian_std", jac.logJacobianStd)
            add("similarity", 1 - Double(similarity(batch.fixed, warped).item))
            add("similarity_before", 1 - Double(similarity(batch.fixed, batch.moving).item))
            if i == 0 { lastValidation = (pair, warpedLabels, warped) }
            rows.append(row)
        }
        return rows
    }

    /// The middle slice of the first validation pair: fixed image with its labels (left) and with
    /// the warped moving labels (right).
    public func drawOverlay(to path: String) throws {
        guard let (pair, warpedLabels, _) = lastValidation, let fixedLabels = pair.fixed.labels, let warpedLabels else { return }
        try Plots.middleSliceOverlay(
            image: pair.fixed.image.data, reference: fixedLabels.data, prediction: warpedLabels.scalars, shape: pair.fixed.image.shape
        ).write(to: path)
    }
}

extension RegistrationDataset {
    /// Pairs stacked along N; with `labels` false (or a pair without label maps) the batch has
    /// no label maps or foregrounds.
    func batch(_ pairs: [PreparedPair], labels: Bool = true) -> RegistrationBatch {
        let spatial = dims == 3 ? shape : Array(shape.dropFirst())
        let n = pairs.count
        func stack(_ arrays: [VoxelArray]) -> Tensor {
            Tensor(shape: [n, 1] + spatial, data: arrays.flatMap(\.data))
        }
        let labelled = labels && pairs.allSatisfy { $0.fixed.labels != nil && $0.moving.labels != nil }
        let fixedLabels = labelled ? stack(pairs.map { $0.fixed.labels! }) : nil
        let movingLabels = labelled ? stack(pairs.map { $0.moving.labels! }) : nil
        func foreground(_ labels: Tensor?) -> Tensor? { classes > 1 ? labels.map { foregroundOneHot($0, classes: classes) } : nil }
        return RegistrationBatch(
            fixed: stack(pairs.map(\.fixed.image)), moving: stack(pairs.map(\.moving.image)),
            fixedLabels: fixedLabels, movingLabels: movingLabels,
            fixedForeground: foreground(fixedLabels), movingForeground: foreground(movingLabels))
    }
}

/// Soft Dice loss of probability maps `p` against one-hot targets `t` (`[N, K, spatial…]`):
/// `1 − mean_{n, k≥1} (2·Σ p·t + ε) / (Σ p + Σ t + ε)` over foreground classes, ε = 1e-5 (a
/// class absent from both scores 1). VoxelMorph's semi-supervised Dice on warped atlas labels.
func softDiceLoss(_ p: Tensor, _ t: Tensor) -> Tensor {
    let k = p.shape[1]
    return ProbabilityDiceLoss(smooth: 1e-5)(p.slice(axis: 1, 1..<k), t.slice(axis: 1, 1..<k))
}
