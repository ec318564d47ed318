import Foundation
import MorphoIO
import MorphoTensor

/// A run config derived from a dataset's fingerprint, each choice with its reason, re-deriving
/// nnU-Net's planning rules for a CPU: target spacing, 2D or 3D, patch size and U-Net depth,
/// batch size, normalisation, and the number of steps that fit a time budget on this machine (one
/// training step is timed).
public struct DatasetPlan: Sendable {
    public var fingerprint: DatasetFingerprint
    public var dataset: String
    public var name: String
    public var dims: Int
    /// For 2D plans, the axis slices are taken along.
    public var sliceAxis: SpatialAxis
    /// Target voxel size in mm (x, y, z).
    public var targetSpacing: [Double]
    /// Median case size in voxels (x, y, z) at the target spacing.
    public var medianShape: [Int]
    /// Patch size in voxels: (x, y, z) in 3D, the two in-plane axes in 2D (NIfTI order).
    public var patch: [Int]
    /// U-Net widths per level (strides 2 between levels).
    public var channels: [Int]
    public var batchSize: Int
    public var normalization: String
    public var epochs: Int
    public var stepsPerEpoch: Int
    public var validateEvery: Int
    public var validationFraction: Double
    /// Seconds one training step took on this machine, measured while planning.
    public var stepSeconds: Double
    public var budgetMinutes: Double
    /// One line per decision: what was chosen and why.
    public var reasons: [String]
}

public enum DatasetPlanner {
    /// An axis is anisotropic when its spacing exceeds this many times the others' (nnU-Net's
    /// value).
    public static let anisotropyThreshold = 3.0
    /// Patch voxels aimed at before clipping to the median shape: 64³ in 3D, 256² in 2D, what a
    /// 2-core CPU steps through in about a second with the planned widths.
    public static let patchVoxels3D = 64.0 * 64 * 64, patchVoxels2D = 256.0 * 256
    /// The deepest feature map keeps at least this many voxels per axis (nnU-Net: 4).
    public static let minimumFeatureMapEdge = 4
    /// A batch sees at most this share of the dataset's voxels (nnU-Net: 5 %).
    public static let maximumDatasetShare = 0.05
    /// The share of the budget planned for training steps; the rest is for validation passes,
    /// the postprocessing decision and loading.
    public static let stepShare = 0.75
    /// Fewer steps than this in the budget and the patch shrinks: steps still pay at a few
    /// thousand (the MNI152 tissue plan gained 0.011 GM / 0.014 WM Dice from 3,650 to 11,500
    /// steps of the same patch), so a very short budget is better spent on more, smaller steps.
    public static let minimumSteps = 2_500
    /// At least this many steps in the budget and the patch grows.
    public static let generousSteps = 20_000

    /// The `p`-th percentile (0–100) of `values`, numpy's linear interpolation, in Double (spacings
    /// such as 1.2 mm stay exact).
    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let rank = p / 100 * Double(sorted.count - 1)
        let i = Int(rank.rounded(.down)), j = min(sorted.count - 1, i + 1)
        return sorted[i] + (rank - Double(i)) * (sorted[j] - sorted[i])
    }

    /// The median of each axis, except on an anisotropic axis with few voxels (nnU-Net's rule:
    /// its spacing > 3× the others' and its median voxel count · 3 < the others'), where the 10th
    /// percentile of that axis's spacings is taken (but not finer than the other axes), so that
    /// the thick-slice cases are not interpolated from too few slices.
    ///
    /// - Parameters: spacings (mm) and shapes (voxels) per case, in (x, y, z).
    /// - Returns: the target spacing (x, y, z) and the anisotropic axis (0 = x, 1 = y, 2 = z) if any.
    public static func targetSpacing(spacings: [[Double]], shapes: [[Int]]) -> (spacing: [Double], anisotropicAxis: Int?) {
        var target = (0..<3).map { a in percentile(spacings.map { $0[a] }, 50) }
        let size = (0..<3).map { a in percentile(shapes.map { Double($0[a]) }, 50) }
        let worst = target.indices.max { target[$0] < target[$1] }!
        let others = target.indices.filter { $0 != worst }
        let otherSpacing = others.map { target[$0] }.max()!, otherSize = others.map { size[$0] }.min()!
        guard target[worst] > anisotropyThreshold * otherSpacing, size[worst] * anisotropyThreshold < otherSize else {
            return (target, nil)
        }
        target[worst] = max(percentile(spacings.map { $0[worst] }, 10), otherSpacing * (1 + 1e-5))
        return (target, worst)
    }

    /// Plans a run for `fingerprint` within `budgetMinutes` of training on this machine.
    ///
    /// - Parameters:
    ///   - dataset: the folder, written as `data.dataset`.
    ///   - stepSeconds: seconds of one training step of a config (default: `stepTimer()`, which
    ///     times real steps on the dataset).
    /// - Throws: `MorphoTrainError.config` if the derived config does not parse (a planner bug).
    public static func plan(
        _ fp: DatasetFingerprint, dataset: String, name: String, budgetMinutes: Double,
        stepSeconds: ((RunConfig) throws -> Double)? = nil
    ) throws -> DatasetPlan {
        var reasons: [String] = []
        let (target, anisotropic) = targetSpacing(spacings: fp.spacings, shapes: fp.shapes)
        let axisNames = ["x", "y", "z"]
        func mm(_ v: [Double]) -> String { "(" + v.map { String(format: "%.3g", $0) }.joined(separator: ", ") + ") mm" }
        reasons.append("target spacing \(mm(target)): the median spacing of the \(fp.spacings.count) cases"
            + (anisotropic.map { ", except \(axisNames[$0]), anisotropic, at the 10th percentile of its spacings" } ?? ""))
        let resampled = fp.shapes.indices.map { i in (0..<3).map { a in Double(fp.shapes[i][a]) * fp.spacings[i][a] / target[a] } }
        let medianShape = (0..<3).map { a in Int(percentile(resampled.map { $0[a] }, 50).rounded()) }
        reasons.append("median case size at that spacing: \(medianShape) voxels (x, y, z)")

        // 2D for flat images and for anisotropic volumes (MorphoSeg's U-Net pools every axis
        // alike, so a 3D network would run out of the thin axis first).
        let flat = fp.shapes.allSatisfy { $0[2] == 1 }
        let dims = flat || anisotropic != nil ? 2 : 3
        let sliceAxis: SpatialAxis = flat ? .z : anisotropic.map { [SpatialAxis.x, .y, .z][$0] } ?? .z
        reasons.append(dims == 3
            ? "3D U-Net: the volumes are close enough to isotropic"
            : flat ? "2D U-Net: the images are 2D"
                : "2D U-Net on slices along \(sliceAxis.rawValue): that axis is \(String(format: "%.1f", target[anisotropic!]))× coarser and has few voxels")

        // Patch: equal extent in mm on each axis, scaled to a voxel count, clipped to the median
        // shape, then as many levels as keep ≥ 4 voxels per axis at the bottom (≤ 5 in 3D, ≤ 6
        // in 2D) and sizes rounded to multiples of 2^levels; the batch follows the patch.
        let axes = dims == 3 ? [0, 1, 2] : [0, 1, 2].filter { axisNames[$0] != sliceAxis.rawValue }
        let inverse = axes.map { 1 / target[$0] }
        let datasetVoxels = resampled.map { $0.reduce(1, *) }.reduce(0, +)
        let preferredBatch = dims == 3 ? 2 : 8
        func geometry(_ voxels: Double) -> (patch: [Int], levels: Int, channels: [Int], batch: Int) {
            let scale = pow(voxels / inverse.reduce(1, *), 1 / Double(axes.count))
            let raw = zip(axes, inverse).map { a, s in min(s * scale, Double(max(medianShape[a], 1))) }
            let levels = max(1, min(dims == 3 ? 5 : 6, raw.map { Int(log2(max($0, 1) / Double(minimumFeatureMapEdge)) + 1e-9) }.min()!))
            let multiple = 1 << levels
            let patch = raw.map { max(multiple, Int(($0 / Double(multiple)).rounded()) * multiple) }
            let channels = (0...levels).map { min(16 << $0, dims == 3 ? 128 : 256) }
            let capped = Int(maximumDatasetShare * datasetVoxels / Double(patch.reduce(1, *)))
            return (patch, levels, channels, max(2, min(preferredBatch, capped)))
        }

        let ct = fp.channels.count == 1 && fp.channels[0].lowercased() == "ct"
        let croppedMedian = percentile(fp.nonzeroBoxFractions, 50)
        let nonzero = !ct && croppedMedian < 0.75
        let stats = fp.foregroundIntensities.first
        let normalization = ct
            ? "{kind: ct, clip: [\(stats!.percentile00_5), \(stats!.percentile99_5)], mean: \(stats!.mean), std: \(stats!.std)}"
            : "{kind: zscore, nonzero: \(nonzero)}"
        let normalizationReason = ct
            ? "CT normalisation: clip to the foreground's 0.5/99.5 percentiles, z-score with the foreground mean and std"
            : "per-image z-score" + (nonzero ? " over non-zero voxels (the non-zero region fills a median \(Int(croppedMedian * 100)) % of the images)" : "")
                + (fp.channels.contains { $0.lowercased() == "ct" } ? "; the CT scheme needs a single CT channel" : "")

        let validationFraction = fp.spacings.count >= 5 ? 0.2 : fp.spacings.count >= 2 ? 1 / Double(fp.spacings.count) : 0
        let time = stepSeconds ?? stepTimer()
        let budgetSeconds = budgetMinutes * 60 * stepShare
        /// A plan with the patch of `voxels`, its step timed.
        func candidate(_ voxels: Double) throws -> DatasetPlan {
            let g = geometry(voxels)
            var plan = DatasetPlan(
                fingerprint: fp, dataset: dataset, name: name, dims: dims, sliceAxis: sliceAxis, targetSpacing: target,
                medianShape: medianShape, patch: g.patch, channels: g.channels, batchSize: g.batch, normalization: normalization,
                epochs: 1, stepsPerEpoch: 1, validateEvery: 1, validationFraction: validationFraction, stepSeconds: 0,
                budgetMinutes: budgetMinutes, reasons: reasons)
            plan.stepSeconds = try time(try RunConfig(yaml: plan.yaml, file: "<plan>"))
            return plan
        }
        func steps(_ p: DatasetPlan) -> Int { Int(budgetSeconds / max(p.stepSeconds, 1e-3)) }

        // The budget scales the patch as well as the steps. Too few steps for the budget: halve
        // the patch's voxels (down to ⅛ of the default) while that buys at least 20 % more steps.
        // Steps to spare: double them (up to 8× the default, and no further than the median case
        // clips the patch) while the larger patch still leaves `generousSteps / 2` steps; a larger
        // patch gives each step more context, which more steps of a small patch cannot.
        let defaultVoxels = dims == 3 ? patchVoxels3D : patchVoxels2D
        var voxels = defaultVoxels
        var plan = try candidate(voxels)
        let first = plan
        while steps(plan) < minimumSteps, voxels > defaultVoxels / 8 {
            let smaller = try candidate(voxels / 2)
            guard smaller.patch != plan.patch, Double(steps(smaller)) >= 1.2 * Double(steps(plan)) else { break }
            voxels /= 2
            plan = smaller
        }
        while steps(plan) >= generousSteps, voxels < defaultVoxels * 8, geometry(voxels * 2).patch != plan.patch {
            let larger = try candidate(voxels * 2)
            guard steps(larger) >= generousSteps / 2 else { break }
            voxels *= 2
            plan = larger
        }
        let scaling = voxels < defaultVoxels
            ? "; smaller than the default \(first.patch), whose \(steps(first)) steps in the budget are fewer than the \(minimumSteps) a U-Net needs"
            : voxels > defaultVoxels
                ? "; larger than the default \(first.patch), whose \(steps(first)) steps in the budget are more than \(generousSteps): more context per step"
                : ""
        let levels = plan.channels.count - 1
        let factor = voxels / defaultVoxels
        let edge = (dims == 3 ? "64³" : "256²") + (factor > 1 ? " × \(Int(factor))" : factor < 1 ? " ÷ \(Int(1 / factor))" : "")
        plan.reasons.append("patch \(plan.patch) voxels (\(dims == 3 ? "x, y, z" : "in-plane")): \(edge) voxels of equal extent in mm, "
            + "clipped to the median size; \(levels) poolings by 2 leave ≥ \(minimumFeatureMapEdge) voxels per axis, widths \(plan.channels)"
            + scaling)
        plan.reasons.append("batch \(plan.batchSize): \(preferredBatch) \(dims)D patches, at least 2, at most 5 % of the dataset's voxels per step")
        plan.reasons.append(normalizationReason)

        // Three quarters of the budget for training steps; the rest for validation passes, the
        // postprocessing decision and loading.
        let total = max(10, steps(plan))
        plan.stepsPerEpoch = min(50, max(5, total / 10))
        plan.epochs = max(2, total / plan.stepsPerEpoch)
        plan.validateEvery = max(1, plan.epochs / 10)
        plan.reasons.append(String(
            format: "%d epochs × %d steps: one training step (batch, loss, backward, update) took %.2f s here, %.0f min budget (¾ for steps)", plan.epochs,
            plan.stepsPerEpoch, plan.stepSeconds, budgetMinutes))
        _ = try RunConfig(yaml: plan.yaml, file: "<plan>")
        return plan
    }

    /// `timedStep` for the planner's candidates, which differ only in patch, depth and batch: the
    /// dataset is loaded once, by the first call, as `train` loads it.
    public static func stepTimer() -> (RunConfig) throws -> Double {
        var dataset: SegmentationDataset?
        return { config in
            if dataset == nil { dataset = try SegmentationDataset.load(config, distances: config.loss.boundary) }
            return try timedStep(config, dataset: dataset!)
        }
    }

    /// Seconds of one training step of `config` as `train` runs it: a batch drawn from the
    /// dataset (patch sampling, augmentation, distance maps), the loss, the backward pass and the
    /// optimiser's update (`TrainingStep`), the fastest of three after a warm-up step.
    ///
    /// The batch is made in the timed interval, not beside it as the background loader does:
    /// on a 2-core machine the loader takes the cores the step would use, and timing the network
    /// alone under-counted a real step by 1.4–1.8× (0.08 s timed against 0.13–0.15 s trained on
    /// the MNI152 plan), so a plan overran its budget. The dataset is loaded as `train` loads it.
    public static func timedStep(_ config: RunConfig, dataset: SegmentationDataset? = nil) throws -> Double {
        let task = try dataset.map { try SegmentationTask(config: config, dataset: $0) } ?? SegmentationTask(config: config)
        let step = TrainingStep(model: task.model, training: config.training)
        var best = Double.infinity
        for round in 0..<4 {
            let start = DispatchTime.now().uptimeNanoseconds
            let batch = task.makeBatch(0x504C_414E, round)
            try step(step: round) { task.loss(batch, epoch: 0) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if round > 0 { best = min(best, seconds) }
        }
        return best
    }
}

extension DatasetPlan {
    /// The planned run config, commented: `morphoseg train --config` runs it unchanged.
    public var yaml: String {
        func list<T>(_ v: [T]) -> String { "[" + v.map { "\($0)" }.joined(separator: ", ") + "]" }
        func g(_ v: Double) -> String { String(format: "%.6g", v) }
        let cases = fingerprint.spacings.count
        let folds = cases >= 2
            ? "\n  folds: \(min(5, cases))   # `train --fold k` (k = 0…\(min(5, cases) - 1)) validates on fold k's cases (splits.json, by subject)"
            : ""
        let flips = dims == 3 ? "[x, y, z]" : list(["x", "y", "z"].filter { $0 != sliceAxis.rawValue })
        return """
            # Planned by `morphoseg plan` from the fingerprint of \(dataset) (\(fingerprint.spacings.count) training cases,
            # channels \(fingerprint.channels.joined(separator: ", ")); labels \(fingerprint.labels.joined(separator: ", "))).
            # Why each value:
            \(reasons.map { "#   - \($0)" }.joined(separator: "\n"))
            name: \(name)
            model:
              kind: segmentation
              unet:
                dims: \(dims)
                channels: \(list(channels))   # 16 doubling per level, capped for a CPU
                strides: \(list(Array(repeating: 2, count: channels.count - 1)))
                norm: instance
                activation: leaky_relu
                classes: \(fingerprint.labels.count)
            data:
              dataset: \(dataset)
              modalities: \(list(fingerprint.channels))
              validation:
                fraction: \(g(validationFraction))   # held-out cases (by subject)
              normalization: \(normalization)
              spacing: \(list(targetSpacing.map(g)))   # mm (x, y, z)
              slice_axis: \(sliceAxis.rawValue)
              patch:
                size: \(list(patch))
                foreground: 0.33   # share of patches centred on a labelled voxel (nnU-Net: 1/3)
              augmentation:   # mirroring on every in-plane axis, mild rotation, scaling and intensity jitter
                flip: \(flips)
                rotation: 15
                scaling: 0.15
                intensity: 0.1
                probability: 0.2
              seed: 0
              threads: 2\(folds)
            loss:
              regional: dice_ce
            training:
              epochs: \(epochs)
              steps_per_epoch: \(stepsPerEpoch)   # one step measured at \(String(format: "%.2f", stepSeconds)) s for a \(g(budgetMinutes)) min budget
              batch_size: \(batchSize)
              optimizer:
                kind: adam
                lr: 0.003
              lr_schedule:
                kind: poly
              grad_clip: 12
              validate_every: \(validateEvery)
              seed: 0
            inference:
              overlap: 0.5
              blending: gaussian

            """
    }
}
