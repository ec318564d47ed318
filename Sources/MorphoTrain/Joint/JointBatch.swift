import MorphoTensor

/// One joint training batch of N pairs — a rank's shard of the global batch under `mpirun`.
/// Images `[N, 1, spatial…]`; label maps `[N, 1, spatial…]` (class indices; all 0 for an
/// unlabelled image, whose flag is false). Everything a step reads that depends on the batch
/// alone is built with it on the loader, so a training step copies none of it: the U-Net's input
/// `images` `[2N + S, 1, spatial…]` (`[moving; fixed; segmentation-only]`, S =
/// `segmentationRows`, the `joint.segmentation_batch` samples of this shard, all labelled), the
/// one-hot foreground channels of both label maps `[N, classes − 1, spatial…]` (the coupling
/// term's sides where an image is labelled), and, stacked for the L labelled images of
/// `[moving; fixed; segmentation-only]` only, in that order (`labelledRows`),
/// what the segmentation terms read: their label maps `[L, 1, spatial…]`, signed distance maps
/// `[L, K, spatial…]` (mm) and the PRL target's flux divergences div_I and div_J
/// `[L, 1, spatial…]` each (of the foreground `1 − onehot(label)₀`) — each a scalar 0 when L is 0
/// or the term is off.
public struct JointBatch: Sendable {
    public var moving: Tensor
    public var fixed: Tensor
    public var images: Tensor
    public var movingLabels: Tensor
    public var fixedLabels: Tensor
    public var movingForeground: Tensor
    public var fixedForeground: Tensor
    public var movingLabelled: [Bool]
    public var fixedLabelled: [Bool]
    public var labelledLabels: Tensor
    public var labelledDistances: Tensor
    public var labelledFluxes: (divI: Tensor, divJ: Tensor)
    public var phase: JointPhase
    /// S: the labelled-only samples after the pairs' rows in `images` (segmentation terms only).
    public var segmentationRows: Int = 0
    /// The labelled moving images the `joint.warped_pairs` terms warp (nil when the terms are off).
    public var warpedPairs: JointWarpedPairSources? = nil
    /// Pairs of the whole global batch (all ranks' shards; N in one process).
    public var globalPairs: Int
    /// Labelled images of the whole global batch (moving and fixed counted apart, plus the
    /// segmentation-only samples; this batch's own count in one process), what the segmentation
    /// terms average over.
    public var globalLabelled: Int

    /// Labelled images of this batch (moving, fixed and segmentation-only).
    public var labelledCount: Int { labelledRows.count }

    /// Rows of `images` (`[moving; fixed; segmentation-only]`) that have a label map: the rows of
    /// `labelledLabels`, `labelledDistances` and `labelledFluxes`.
    public var labelledRows: [Int] {
        let flags = movingLabelled + fixedLabelled + Array(repeating: true, count: segmentationRows)
        return flags.indices.filter { flags[$0] }
    }
}

extension RegistrationDataset {
    /// Pairs stacked along N, with per-image label flags; `distances` gives the signed distance
    /// maps of a labelled image (nil for every image: no boundary term, a scalar 0), `fluxes`
    /// its PRL target fluxes `[div_I; div_J]` (nil: no PRL, scalar 0s), both stacked for the
    /// labelled images only. `segmentationOnly`: labelled images that follow the pairs in the
    /// U-Net's input and enter only the segmentation terms. `globalPairs` / `globalLabelled`:
    /// the counts of the global batch these pairs are a shard of (nil: these pairs are the whole
    /// batch).
    func jointBatch(
        _ pairs: [PreparedPair], segmentationOnly: [RegistrationImage] = [], classes: Int, phase: JointPhase,
        globalPairs: Int? = nil, globalLabelled: Int? = nil,
        fluxes: ((RegistrationImage) -> [Float]?)? = nil, distances: (RegistrationImage) -> VoxelArray?
    ) -> JointBatch {
        let spatial = dims == 3 ? shape : Array(shape.dropFirst())
        let n = pairs.count, voxels = shape.reduce(1, *)
        func stack(_ arrays: [VoxelArray]) -> Tensor { Tensor(shape: [arrays.count, 1] + spatial, data: arrays.flatMap(\.data)) }
        func labels(_ images: [RegistrationImage]) -> Tensor {
            Tensor(shape: [n, 1] + spatial, data: images.flatMap { $0.labels?.data ?? [Float](repeating: 0, count: voxels) })
        }
        let moving = pairs.map(\.moving), fixed = pairs.map(\.fixed)
        precondition(segmentationOnly.allSatisfy { $0.labels != nil }, "segmentation-only samples are labelled")
        let labelled = (moving + fixed + segmentationOnly).filter { $0.labels != nil }
        /// `channels` maps per labelled image, `[L, channels, spatial…]`; a scalar 0 when there
        /// are none (no labelled image, or the term is off).
        func perLabelled(_ channels: Int, _ map: (RegistrationImage) -> [Float]?) -> Tensor {
            let data = labelled.compactMap(map)
            guard !data.isEmpty else { return Tensor(scalar: 0) }
            precondition(data.count == labelled.count && data.allSatisfy { $0.count == channels * voxels })
            return Tensor(shape: [labelled.count, channels] + spatial, data: data.flatMap { $0 })
        }
        let movingLabels = labels(moving), fixedLabels = labels(fixed)
        /// The PRL target's div_I and div_J of each labelled image, `[L, 1, spatial…]` each.
        func divergences(_ f: (RegistrationImage) -> [Float]?) -> (divI: Tensor, divJ: Tensor) {
            let both = perLabelled(2, f)
            guard both.rank > 0 else { return (both, both) }
            return (both.slice(axis: 1, 0..<1), both.slice(axis: 1, 1..<2))
        }
        return JointBatch(
            moving: stack(moving.map(\.image)), fixed: stack(fixed.map(\.image)), images: stack((moving + fixed + segmentationOnly).map(\.image)),
            movingLabels: movingLabels, fixedLabels: fixedLabels,
            movingForeground: foregroundOneHot(movingLabels, classes: classes), fixedForeground: foregroundOneHot(fixedLabels, classes: classes),
            movingLabelled: moving.map { $0.labels != nil }, fixedLabelled: fixed.map { $0.labels != nil },
            labelledLabels: perLabelled(1) { $0.labels?.data }, labelledDistances: perLabelled(classes) { distances($0)?.data },
            labelledFluxes: fluxes.map { divergences($0) } ?? (Tensor(scalar: 0), Tensor(scalar: 0)),
            phase: phase, segmentationRows: segmentationOnly.count, globalPairs: globalPairs ?? n,
            globalLabelled: globalLabelled ?? labelled.count)
    }
}
