import MorphoDistributed
import MorphoLosses
import MorphoNN
import MorphoTensor

/// `joint.warped_pairs`: registration as learned augmentation (cf. Zhao et al. 2019, "Data
/// augmentation using learned transformations"). A labelled moving image M, warped by the field u
/// its pair's registration gives it, and its one-hot labels warped by the same u form an
/// image–label pair that is exact whatever u's error (the field moves image and labels alike),
/// with the anatomical variation the displacement network has learned between training images.
/// The U-Net trains on these W samples with the labelled samples' objective:
///
///     w_wp · [w_R(e) · regional_soft(S(M∘(id+u)), T) + α(e) · boundary(S(M∘(id+u)), φ_M∘(id+u))]
///     T_c = onehot(L_M)_c∘(id+u) (c ≥ 1, linear warp),  T_0 = 1 − Σ_{c≥1} T_c
///
/// u detached (the terms train the U-Net only). The labels are warped **linearly as one-hot**
/// (soft targets), not nearest: the image is warped linearly, so a voxel whose sample falls
/// between a GM and a WM voxel holds the bilinear mix of their intensities, and the same weights
/// applied to the one-hot maps give exactly that voxel's class fractions; nearest labels would
/// give it one class and move boundaries by up to half a voxel against the image. Outside the
/// moving grid the image reads 0 and T is background. The signed distance maps φ_M of the
/// boundary term are warped linearly too (the distances of L_M, carried along the field: their
/// sign is that of the warped labels; their magnitudes are not re-measured).
///
/// The W samples are the batch's pairs whose moving image is labelled (their fields from the
/// step's registration forward pass) and `joint.warped_pairs.extra` extra pairs per step
/// (a labelled training image onto another training image) whose fields the displacement network
/// computes without gradients. The regional and boundary terms average over the W samples;
/// under `mpirun` each rank scales them by its share of the global batch's W (as the labelled
/// terms are scaled).

/// What a joint batch carries for the warped-pairs terms (built on the loader with the batch):
/// the W moving images whose labels are known, stacked as `[pairs' labelled moving; extra
/// moving]` (W = `pairRows.count + extraCount`).
public struct JointWarpedPairSources: Sendable {
    /// The W moving images, `[W, 1, spatial…]`.
    public var images: Tensor
    /// Their one-hot foreground channels (classes 1..<C), `[W, C − 1, spatial…]`.
    public var foreground: Tensor
    /// Their signed distance maps (mm), `[W, K, spatial…]`; a scalar 0 without a boundary term.
    public var distances: Tensor
    /// The pair (row of `moving` / `fixed` in the batch) whose field warps source row r, r < P.
    public var pairRows: [Int]
    /// The fixed images of the extra pairs, `[E, 1, spatial…]`; a scalar 0 when E = 0.
    public var extraFixed: Tensor
    public var extraCount: Int
    /// W of the whole global batch (this batch's W in one process).
    public var globalCount: Int

    public var count: Int { pairRows.count + extraCount }
}

extension JointWarpedPairSources {
    /// The sources of `pairs` (their labelled moving images) and `extras` (labelled moving,
    /// any fixed): `distances` gives the signed distance maps of a labelled image (nil: no
    /// boundary term).
    static func make(
        pairs: [PreparedPair], extras: [(moving: RegistrationImage, fixed: RegistrationImage)], spatial: [Int], classes: Int,
        globalCount: Int, distances: (RegistrationImage) -> VoxelArray?
    ) -> JointWarpedPairSources {
        let pairRows = pairs.indices.filter { pairs[$0].moving.labels != nil }
        let sources = pairRows.map { pairs[$0].moving } + extras.map(\.moving)
        precondition(sources.allSatisfy { $0.labels != nil }, "warped-pair sources are labelled")
        func stack(_ arrays: [[Float]], channels: Int) -> Tensor {
            arrays.isEmpty ? Tensor(scalar: 0) : Tensor(shape: [arrays.count, channels] + spatial, data: arrays.flatMap { $0 })
        }
        let labels = stack(sources.map { $0.labels!.data }, channels: 1)
        let maps = sources.compactMap { distances($0)?.data }
        return JointWarpedPairSources(
            images: stack(sources.map(\.image.data), channels: 1),
            foreground: sources.isEmpty ? Tensor(scalar: 0) : foregroundOneHot(labels, classes: classes),
            distances: maps.count == sources.count && !maps.isEmpty ? stack(maps, channels: maps[0].count / spatial.reduce(1, *)) : Tensor(scalar: 0),
            pairRows: pairRows, extraFixed: stack(extras.map(\.fixed.image.data), channels: 1), extraCount: extras.count,
            globalCount: globalCount)
    }
}

/// What the warped-pairs terms read, computed in the step (`JointTask.warpedPairs`).
struct JointWarpedPairOutput {
    /// The U-Net's logits on the W warped images, `[W, C, spatial…]`.
    let logits: Tensor
    let probs: Tensor
    /// T: the warped one-hot labels, all C channels (T_0 = 1 − Σ_{c≥1} T_c), `[W, C, spatial…]`.
    let targets: Tensor
    /// φ_M∘(id+u), `[W, K, spatial…]`; a scalar 0 without a boundary term.
    let distances: Tensor
    /// This batch's share of the global batch's W relative to its share of the pairs
    /// (`DataParallel.itemShare`; 1 in one process).
    let share: Float

    func shared(_ term: Tensor) -> Tensor { share == 1 ? term : term * share }
}

extension JointTask {
    /// The last path element of the extra warped pairs' streams: extra pair j of batch `step`
    /// draws its moving (labelled) and fixed image from `(seed, step, j, warpedPairStream)`.
    static let warpedPairStream = 0x6A75_6900

    /// Extra pair j of batch `step`: a labelled image of `labelled` (indices into `images`) and
    /// another image of `images`, both uniform, from the stream `(seed, step, j, warpedPairStream)`.
    static func extraWarpedPair(
        _ images: [RegistrationImage], labelled: [Int], seed: UInt64, step: Int, j: Int
    ) -> (moving: RegistrationImage, fixed: RegistrationImage) {
        precondition(!labelled.isEmpty && images.count >= 2)
        var rng = SeedStream.generator(seed: seed, step, j, warpedPairStream)
        let m = labelled[Int(rng.next() % UInt64(labelled.count))]
        var f = Int(rng.next() % UInt64(images.count - 1))
        if f >= m { f += 1 }
        return (images[m], images[f])
    }

    /// The warped samples of `sources`: the fields (rows `pairRows` of the step's `flow`,
    /// detached, then the extra pairs' fields from a forward pass without gradients), the warped
    /// images, targets and distance maps, and the U-Net on the warped images (without gradients
    /// when `trainUNet` is false: the registration phase of the alternating strategy). Nil when
    /// the batch has no source.
    func warpedPairs(_ sources: JointWarpedPairSources, flow: Tensor, localPairs: Int, globalPairs: Int, trainUNet: Bool) -> JointWarpedPairOutput? {
        guard sources.count > 0 else { return nil }
        let p = sources.pairRows.count
        var fields: [Tensor] = []
        if p > 0 { fields.append(Self.rows(flow.detached(), sources.pairRows)) }
        if sources.extraCount > 0 {
            let moving = sources.images.slice(axis: 0, p..<sources.count)
            fields.append(withoutGradients { network.registration(moving: moving, fixed: sources.extraFixed) }.detached())
        }
        let u = fields.count == 1 ? fields[0] : Tensor.concat(fields, axis: 0)
        let images = warp(sources.images, u)
        let foreground = warp(sources.foreground, u)
        let targets = Tensor.concat([1 - foreground.sum(axes: [1], keepDims: true), foreground], axis: 1)
        let distances = sources.distances.rank > 0 ? warp(sources.distances, u) : sources.distances
        let seg = network.segmentation
        let logits = trainUNet ? seg(images) : withoutGradients { seg(images) }
        let share = DataParallel.itemShare(
            localItems: sources.count, globalItems: sources.globalCount, localSamples: localPairs, globalSamples: globalPairs)
        return JointWarpedPairOutput(logits: logits, probs: logits.softmax(), targets: targets, distances: distances, share: share)
    }

    /// The warped-pairs terms of the objective (`joint.warped_pairs.weight` above 0): regional
    /// (the soft-target form of `loss.regional`, weight w_wp · w_R(e)) and, with `loss.boundary`,
    /// boundary (weight w_wp · α(e)); each a scalar 0 for a batch without warped samples.
    static func warpedPairTerms(_ config: JointRunConfig) -> [LossTerm<Output>] {
        let l = config.run.loss, w = config.joint.warpedPairsWeight.schedule
        let regional: SoftTargetRegionalLoss
        switch l.regional {
        case .dice: regional = SoftTargetRegionalLoss(lambdaDice: 1, lambdaCE: 0, includeBackground: l.includeBackground)
        case .ce: regional = SoftTargetRegionalLoss(lambdaDice: 0, lambdaCE: 1)
        case .balanced_ce: regional = SoftTargetRegionalLoss(lambdaDice: 0, lambdaCE: 1, balanced: true)
        case .dice_ce: regional = SoftTargetRegionalLoss(lambdaDice: 1, lambdaCE: 1, includeBackground: l.includeBackground)
        }
        let alpha = l.schedule.alphaSchedule
        let regionalWeight: any WeightSchedule = l.boundary ? ProductWeight(w, alpha.regionalWeight) : w
        var terms = [LossTerm<Output>("warped_pairs", weight: regionalWeight) { out in
            guard let x = out.warpedPairs else { return Tensor(scalar: 0) }
            return x.shared(regional(logits: x.logits, targets: x.targets))
        }]
        if l.boundary {
            let boundary = BoundaryLoss(idc: l.idc)
            terms.append(LossTerm("warped_pairs_boundary", weight: ProductWeight(w, alpha.boundaryWeight)) { out in
                guard let x = out.warpedPairs else { return Tensor(scalar: 0) }
                return x.shared(boundary(probs: x.probs, distanceMaps: x.distances))
            })
        }
        return terms
    }
}
