import Foundation
import MorphoDistributed
import MorphoLosses
import MorphoNN
import MorphoTensor

/// Builds the U-Net a config describes (weights initialised from `training.seed`).
public func makeUNet(_ config: RunConfig) -> UNet {
    let u = config.model.unet
    var rng = SeedStream.generator(seed: config.training.seed, 0x554E_4554)
    return UNet(
        spatialRank: u.dims, inChannels: config.inputChannels, outChannels: u.classes, channels: u.channels,
        strides: u.strides, residualUnits: u.residualUnits, deepSupervision: u.deepSupervision, norm: NormKind(u.norm),
        activation: ActivationKind(u.activation), rng: &rng)
}

/// Segmentation as a `TrainingTask`: a U-Net on patches (3D) or slices (2D), the loss
/// `w_R(e)·regional + w_B(e)·boundary (+ λ·PRL)` of the config (weights from `loss.schedule`), validation by
/// sliding-window inference on whole held-out volumes with Dice, HD95 and mean surface distance
/// per foreground class.
public final class SegmentationTask: TrainingTask {
    public typealias Batch = SegmentationBatch

    public let config: RunConfig
    public let dataset: SegmentationDataset
    public let network: UNet
    public let sampler: PatchSampler
    let objective: WeightedLoss<SegmentationOutput>
    /// The most recent validation prediction of the first validation subject (for the overlay).
    private var lastPrediction: (subject: Subject, labels: VoxelArray)?

    public var model: any Module { network }
    public var overview: String {
        "\(dataset.training.count) training and \(dataset.validation.count) validation subjects; U-Net with \(network.parameterCount) parameters"
    }
    public var scoreName: String { "dice_mean" }

    public init(config: RunConfig, dataset: SegmentationDataset) throws {
        self.config = config
        self.dataset = dataset
        network = makeUNet(config)
        sampler = PatchSampler(config, subjects: dataset.training)
        objective = try Self.makeObjective(config)
    }

    /// Loads the data and builds the task in one go.
    public convenience init(config: RunConfig) throws {
        try self.init(config: config, dataset: SegmentationDataset.load(config, distances: config.loss.boundary))
    }

    /// The network's output on a batch, what the loss terms read.
    struct SegmentationOutput {
        var logits: Tensor
        /// Softmax of the logits, when a term needs it (boundary, PRL).
        var probabilities: Tensor?
        var batch: SegmentationBatch
        /// Deep supervision: the lower heads' logits, shallowest first (empty without it).
        var lower: [Tensor] = []
    }

    /// Whether any term reads probabilities.
    var needsProbabilities: Bool { config.loss.boundary || config.loss.prlWeight > 0 }

    static func makeObjective(_ config: RunConfig) throws -> WeightedLoss<SegmentationOutput> {
        let l = config.loss
        var regional: (SegmentationOutput) -> Tensor
        switch l.regional {
        case .dice:
            let f = SoftDiceLoss(includeBackground: l.includeBackground)
            regional = { f(logits: $0.logits, labels: $0.batch.labels) }
        case .ce:
            let f = CrossEntropyLoss()
            regional = { f(logits: $0.logits, labels: $0.batch.labels) }
        case .balanced_ce:
            let f = BalancedCrossEntropyLoss()
            regional = { f(logits: $0.logits, labels: $0.batch.labels) }
        case .dice_ce:
            let f = DiceCELoss(includeBackground: l.includeBackground)
            regional = { f(logits: $0.logits, labels: $0.batch.labels) }
        }
        if config.model.unet.deepSupervision { regional = deeplySupervised(regional, strides: config.model.unet.strides) }
        var terms: [LossTerm<SegmentationOutput>]
        if l.boundary {
            let boundary = BoundaryLoss(idc: l.idc)
            let schedule = l.schedule.alphaSchedule
            terms = [
                LossTerm(l.regional.rawValue, weight: schedule.regionalWeight, regional),
                LossTerm("boundary", weight: schedule.boundaryWeight) { boundary(probs: $0.probabilities!, distanceMaps: $0.batch.distances!) },
            ]
        } else {
            terms = [LossTerm(l.regional.rawValue, regional)]
        }
        if l.prlWeight > 0 {
            let prl = PhysicalRegularizationLoss(K: Float(l.prlK))
            let classes = l.idc
            terms.append(LossTerm("prl", weight: ConstantWeight(l.prlWeight)) { out in
                // The seed's PMLoss compares one probability map with its binary target; with
                // several classes, the mean over the classes `idc`.
                let probs = out.probabilities!
                var total: Tensor?
                for (j, c) in classes.enumerated() {
                    let p = probs.slice(axis: 1, c ..< c + 1)
                    let term = out.batch.prlTargetFluxes.map { prl(prediction: p, targetFluxes: $0[j]) }
                        ?? prl(prediction: p, target: withoutGradients { oneHot(out.batch.labels, class: c) })
                    total = total.map { $0 + term } ?? term
                }
                return total! * (1 / Float(classes.count))
            })
        }
        return try WeightedLoss(terms)
    }

    /// The regional term summed over the outputs of deep supervision (`DeepSupervision`): the
    /// term on the full-resolution logits and on each lower head's against subsampled labels.
    static func deeplySupervised(
        _ regional: @escaping (SegmentationOutput) -> Tensor, strides: [Int]
    ) -> (SegmentationOutput) -> Tensor {
        { out in
            let outputs = 1 + out.lower.count
            let weights = DeepSupervision.weights(outputs: outputs)
            let factors = DeepSupervision.factors(strides: strides, outputs: outputs)
            var total = regional(out) * Float(weights[0])
            for (j, logits) in out.lower.enumerated() {
                var batch = out.batch
                batch.labels = withoutGradients { DeepSupervision.subsampledLabels(out.batch.labels, factor: factors[j + 1]) }
                total = total + regional(SegmentationOutput(logits: logits, probabilities: nil, batch: batch)) * Float(weights[j + 1])
            }
            return total
        }
    }

    /// The whole global batch: `makeShard` at positions `0..<training.batch_size`.
    public var makeBatch: @Sendable (UInt64, Int) -> SegmentationBatch {
        let shard = makeShardedBatch, n = config.training.batchSize
        return { seed, step in shard(seed, step, Array(0..<n)) }
    }

    public var makeShard: (@Sendable (UInt64, Int, [Int]) -> SegmentationBatch)? { makeShardedBatch }

    /// Sample k of batch `step` from its own stream `(seed, step, k)`, so any split of the batch
    /// over ranks draws the same samples.
    var makeShardedBatch: @Sendable (UInt64, Int, [Int]) -> SegmentationBatch {
        let sampler = self.sampler, subjects = dataset.training
        let l = config.loss
        let prl = l.prlWeight > 0 ? PhysicalRegularizationLoss(K: Float(l.prlK)) : nil
        return { seed, step, positions in
            let samples = positions.map { k in
                var rng = SeedStream.generator(seed: seed, step, k)
                return sampler.batch(from: subjects, count: 1, rng: &rng)
            }
            let distances = samples.compactMap(\.distances)
            let labels = Tensor.concat(samples.map(\.labels), axis: 0)
            // The label patch changes with every draw (augmentation), so its PRL target fluxes are
            // made here, on the loader, like the cropped distance maps.
            return SegmentationBatch(
                images: Tensor.concat(samples.map(\.images), axis: 0), labels: labels,
                distances: distances.count == samples.count ? Tensor.concat(distances, axis: 0) : nil,
                prlTargetFluxes: prl.map { prl in l.idc.map { prl.targetFluxes(oneHot(labels, class: $0)) } })
        }
    }

    /// `alpha`, the boundary term's weight at `epoch`, when the boundary loss is on.
    public func epochScalars(epoch: Int) -> [(name: String, value: Double)] {
        config.loss.boundary ? [("alpha", config.loss.schedule.alphaSchedule.alpha(epoch: epoch))] : []
    }

    public func loss(_ batch: SegmentationBatch, epoch: Int) -> WeightedLossValue {
        let outputs = config.model.unet.deepSupervision ? network.deepSupervisionLogits(batch.images) : [network(batch.images)]
        let logits = outputs[0]
        let probabilities = needsProbabilities ? logits.softmax() : nil
        return objective(
            SegmentationOutput(logits: logits, probabilities: probabilities, batch: batch, lower: Array(outputs.dropFirst())), epoch: epoch)
    }

    /// Class probabilities `[K, D, H, W]` of a prepared image (network layout, padded).
    public func probabilities(_ image: VoxelArray, fill: [Float]) -> VoxelArray {
        let window = SlidingWindow(config, shape: image.shape)
        return window.probabilities(image, fill: fill) { network($0) }
    }

    /// Per foreground class k: `dice.k`, `hd95.k`, `msd.k` (means over validation subjects; the
    /// distances over subjects where they are finite, +∞ when none is) and `dice_mean`, the mean
    /// of the `dice.k`. Metrics are computed on the network's grid (after any resampling), padding
    /// removed, with its voxel spacing.
    public func validate() throws -> [(name: String, value: Double)] {
        DataParallel().meanOverSamples(try validateShard(rank: 0, size: 1) ?? [])
    }

    /// The validation subjects' ids, in `validateShard`'s order.
    public var validationCaseNames: [String] { dataset.validation.map(\.id) }

    /// One row per validation subject `i` with `i % size == rank`: `dice_mean` (the subject's
    /// mean over foreground classes, so that its mean over subjects is the mean of the `dice.k`),
    /// then `dice.k`, `hd95.k`, `msd.k` per foreground class k.
    public func validateShard(rank: Int, size: Int) throws -> [[(name: String, value: Double)]]? {
        let classes = Array(1..<dataset.classes)
        var rows: [[(name: String, value: Double)]] = []
        for i in stride(from: rank, to: dataset.validation.count, by: size) {
            let s = dataset.validation[i]
            let probs = probabilities(s.image, fill: s.prepared.fill)
            let predicted = s.prepared.unpadded(SlidingWindow.argmax(probs))
            let reference = s.prepared.unpadded(s.labels)
            let per = SegmentationMetrics.evaluate(
                prediction: predicted.data, reference: reference.data, shape: reference.shape, spacing: reference.spacing,
                labels: classes)
            if i == 0 { lastPrediction = (s, predicted) }
            var row: [(name: String, value: Double)] = [("dice_mean", per.map(\.dice).reduce(0, +) / Double(max(per.count, 1)))]
            for (j, k) in classes.enumerated() {
                row += [("dice.\(k)", per[j].dice), ("hd95.\(k)", per[j].hd95), ("msd.\(k)", per[j].meanSurfaceDistance)]
            }
            rows.append(row)
        }
        return rows
    }

    /// The middle slice (along D of the network layout) of the first validation subject:
    /// reference on the left, prediction on the right.
    public func drawOverlay(to path: String) throws {
        guard let (subject, predicted) = lastPrediction else { return }
        let image = subject.prepared.unpadded(subject.image)
        let reference = subject.prepared.unpadded(subject.labels)
        try Plots.middleSliceOverlay(image: image.data, reference: reference.data, prediction: predicted.data, shape: image.shape)
            .write(to: path)
    }
}
