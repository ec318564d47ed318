import Foundation
import MorphoIO
import MorphoKernels
import MorphoLosses
import MorphoTensor

/// Similarity of two images as registration reports it: correlation-type measures as
/// correlations (1 is identical up to an affine intensity map), MSE as the mean squared
/// difference. Images are `[N, 1, spatial…]` on the same grid.
public struct SimilarityFigures: Codable, Equatable, Sendable {
    /// Mean local squared correlation `1 − LCC loss` with window `lccWindow` (seed 002 `LCC`).
    public var lcc: Double
    public var lccWindow: Int
    /// Global correlation `1 − GCC loss`.
    public var gcc: Double
    /// Mean squared intensity difference.
    public var mse: Double
    /// Mattes mutual information (nats; 32 bins, B-spline window): 0 for unrelated images.
    public var mi: Double = 0

    public static func measure(_ a: Tensor, _ b: Tensor, lccWindow: Int = 9) -> SimilarityFigures {
        withoutGradients {
            SimilarityFigures(
                lcc: 1 - Double(SimilarityLoss(kind: .lcc, window: lccWindow)(a, b).item), lccWindow: lccWindow,
                gcc: 1 - Double(GlobalNCC()(a, b).item), mse: Double(MeanSquaredError()(a, b).item),
                mi: -Double(MutualInformation()(a, b).item))
        }
    }
}

/// The quality figures of one registered pair.
public struct RegistrationQuality: Codable, Equatable, Sendable {
    /// Jacobian determinant statistics of `x ↦ x + u(x)` (voxel units; folding = det ≤ 0).
    public var jacobian: RegistrationMetrics.JacobianStatistics
    /// Fixed vs moving (on the fixed grid) and fixed vs warped moving.
    public var similarityBefore: SimilarityFigures
    public var similarityAfter: SimilarityFigures
    /// Per-label Dice of fixed labels vs moving labels and vs warped moving labels (present when
    /// both label maps are given).
    public var diceBefore: [RegistrationMetrics.LabelDice]?
    public var diceAfter: [RegistrationMetrics.LabelDice]?
    public var meanDiceBefore: Double?
    public var meanDiceAfter: Double?

    /// One line per figure, for the terminal.
    public var summary: String {
        var lines: [String] = []
        func f(_ x: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)f", x) }
        if let b = meanDiceBefore, let a = meanDiceAfter {
            lines.append("mean Dice: \(f(b)) → \(f(a))")
            if let before = diceBefore, let after = diceAfter {
                let perLabel = zip(before, after).map { "\($0.label): \(f($0.dice, 3)) → \(f($1.dice, 3))" }
                lines.append("Dice per label: " + perLabel.joined(separator: ", "))
            }
        }
        lines.append("LCC (w \(similarityAfter.lccWindow)): \(f(similarityBefore.lcc)) → \(f(similarityAfter.lcc)), "
                     + "GCC: \(f(similarityBefore.gcc)) → \(f(similarityAfter.gcc)), "
                     + "MSE: \(f(similarityBefore.mse, 6)) → \(f(similarityAfter.mse, 6)), "
                     + "MI: \(f(similarityBefore.mi)) → \(f(similarityAfter.mi))")
        lines.append("folding (det J ≤ 0): \(f(100 * jacobian.foldingFraction, 3)) % (\(jacobian.foldingCount) voxels), "
                     + "std log|J|: \(f(jacobian.logJacobianStd)), det J in [\(f(jacobian.minimum, 3)), \(f(jacobian.maximum, 3))]")
        return lines.joined(separator: "\n")
    }
}

/// A registered pair: the field, the moving image and labels warped onto the fixed grid, and the
/// figures that say how well it went.
public struct RegistrationResult: Sendable {
    /// `[1, nd, spatial…]`, voxels of the fixed grid, channel `i` along tensor axis `i` (see
    /// `DisplacementFieldVolume` for the NIfTI component order).
    public var flow: Tensor
    /// The moving image sampled at `p + u(p)` (linear, 0 outside), on the fixed geometry.
    public var warped: Volume
    /// The moving labels sampled at `p + u(p)` (nearest, 0 outside), on the fixed geometry.
    public var warpedLabels: Volume?
    public var quality: RegistrationQuality
    /// The network's field before refinement, when the field is a refined prediction.
    public var refinement: ModelRefinement.Figures?

    /// Applies `flow` to `pair` and measures the result. Similarity is measured on `fixedImage`
    /// and `movingImage` when given (the normalised tensors the field was computed from), else
    /// on the pair's own intensities.
    public init(flow: Tensor, pair: RegistrationPair, fixedImage: Tensor? = nil, movingImage: Tensor? = nil, lccWindow: Int = 9) {
        let fixedT = fixedImage ?? pair.fixed.imageTensor
        let movingT = movingImage ?? pair.moving.imageTensor
        self.flow = flow
        let warpedMeasured = warp(movingT, flow, mode: .linear)
        let warpedOwn = movingImage == nil ? warpedMeasured : warp(pair.moving.imageTensor, flow, mode: .linear)
        self.warped = pair.fixed.replacingData(with: warpedOwn)
        var quality = RegistrationQuality(
            jacobian: RegistrationMetrics.jacobianStatistics(ofFlow: flow),
            similarityBefore: SimilarityFigures.measure(fixedT, movingT, lccWindow: lccWindow),
            similarityAfter: SimilarityFigures.measure(fixedT, warpedMeasured, lccWindow: lccWindow))
        if let movingLabels = pair.movingLabels {
            let warpedLabels = warp(movingLabels.imageTensor, flow, mode: .nearest)
            self.warpedLabels = pair.fixed.replacingData(with: warpedLabels)
            if let fixedLabels = pair.fixedLabels {
                let fixedL = fixedLabels.imageTensor
                let before = RegistrationMetrics.dicePerLabel(fixedL, movingLabels.imageTensor)
                let labels = before.map(\.label)
                let after = RegistrationMetrics.dicePerLabel(fixedL, warpedLabels, labels: labels)
                quality.diceBefore = before
                quality.diceAfter = after
                quality.meanDiceBefore = RegistrationMetrics.meanDice(before)
                quality.meanDiceAfter = RegistrationMetrics.meanDice(after)
            }
        }
        self.quality = quality
    }
}

extension RegistrationResult {
    /// Writes the warped image (float32), the field (5D vector NIfTI, intent 1007) and the warped
    /// labels, each on the fixed image's geometry. The field with `.mm` is in ITK's convention
    /// (LPS millimetres, fixed → moving: what ANTs and ITK read, see `ITKDisplacementField`);
    /// with `.voxels` it is MorphoSeg's voxel form, named so in its intent name.
    /// Labels keep the moving label file's integer datatype (int16 if it was stored as float).
    /// Every write is atomic; `nil` paths are skipped.
    public func write(
        warped warpedPath: String, field fieldPath: String? = nil, labels labelsPath: String? = nil,
        fieldUnits: FieldUnits = .mm, pair: RegistrationPair
    ) throws {
        try NIfTI.write(warped, to: warpedPath, like: pair.fixed)
        if let fieldPath {
            let voxels = DisplacementFieldVolume.volume(fromFlow: flow, on: pair.fixed)
            switch fieldUnits {
            case .mm: try ITKDisplacementField(voxels: voxels).write(to: fieldPath, like: pair.fixed)
            case .voxels: try ITKDisplacementField.writeVoxelForm(voxels, to: fieldPath, like: pair.fixed)
            }
        }
        if let labelsPath, let warpedLabels {
            let stored = pair.movingLabels?.header.datatype ?? .int16
            try NIfTI.write(warpedLabels, to: labelsPath, datatype: stored.isInteger ? stored : .int16, like: pair.fixed)
        }
    }
}

/// What `morphoseg register --json` prints: the inputs, the quality figures and the time.
public struct RegistrationSummary: Codable, Sendable {
    public var files: RegistrationPairFiles
    /// Every file written, with the convention to read it by.
    public var outputs: [RegistrationOutput]
    public var quality: RegistrationQuality
    /// Each stage in order (linear stages, then the deformable one), with its metric and time.
    public var stages: [RegistrationStageReport] = []
    /// The network's field before refinement (`register --model --refine`); absent otherwise.
    public var refinement: ModelRefinement.Figures?
    /// Wall-clock time of the whole command (reading, resampling, registering, writing).
    public var seconds: Double
    /// CPU time of the process over the same span (all threads), a load-independent figure.
    public var cpuSeconds: Double
    public var threads: Int

    public init(
        files: RegistrationPairFiles, outputs: [RegistrationOutput] = [], quality: RegistrationQuality,
        stages: [RegistrationStageReport] = [], refinement: ModelRefinement.Figures? = nil, seconds: Double,
        cpuSeconds: Double, threads: Int
    ) {
        self.refinement = refinement
        self.files = files
        self.stages = stages
        self.outputs = outputs
        self.quality = quality
        self.seconds = seconds
        self.cpuSeconds = cpuSeconds
        self.threads = threads
    }

    /// CPU time used by this process so far (user + system, all threads), seconds.
    public static func processCPUSeconds() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// Pretty-printed, snake_case keys sorted; a NaN Dice score (a label in neither map) is the string "nan".
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
