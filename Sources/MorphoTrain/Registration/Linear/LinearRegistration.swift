import Foundation
import MorphoIO
import MorphoTensor

/// The linear stages of a registration (ANTs' `Rigid` then `Affine` stages before `SyN`): the
/// images' intensities normalised (percentiles 0.5–99.5 → [0, 1]), a pyramid built once, the
/// start placed by `initialization`, then each stage in `stages` optimised from the previous
/// stage's result (`LinearStage`). Works in world coordinates on each image's own grid: the
/// moving image need not share the fixed grid, spacing or orientation.
public struct LinearRegistration: Sendable {
    public struct Settings: Sendable, Equatable {
        /// The stages in order: `[.rigid]`, `[.affine]` or `[.rigid, .affine]` (the default).
        public var stages: [LinearTransform.Kind] = [.rigid, .affine]
        public var initialization: LinearInitialization = .com
        /// The similarity of every stage (`mi` by default: contrast-agnostic).
        public var similarity: SimilarityKind = .mi
        /// Pyramid: shrink factors and Gaussian sigmas (voxels), coarse to fine.
        public var shrinkFactors: [Int] = [4, 2, 1]
        public var smoothingSigmas: [Double] = [2, 1, 0]
        /// Per stage: iterations per level, samples, steps, bins (see `LinearStage.Settings`).
        public var iterations: [Int] = LinearStage.Settings(kind: .rigid).iterations
        public var samples: Int = LinearStage.Settings(kind: .rigid).samples
        public var bins: Int = 32

        public init() {}

        /// - Throws: `MorphoTrainError.invalidOption` naming the setting.
        public func validate() throws {
            guard [[.rigid], [.affine], [.rigid, .affine]].contains(stages) else {
                throw MorphoTrainError.invalidOption(key: "transform", reason: "linear stages are rigid, affine, or rigid then affine")
            }
            guard !shrinkFactors.isEmpty, shrinkFactors.count == smoothingSigmas.count, shrinkFactors.allSatisfy({ $0 >= 1 }),
                  smoothingSigmas.allSatisfy({ $0 >= 0 })
            else {
                throw MorphoTrainError.invalidOption(
                    key: "linear-shrink-factors", reason: "one shrink factor ≥ 1 and one smoothing σ ≥ 0 per level")
            }
            guard iterations.count == shrinkFactors.count, iterations.allSatisfy({ $0 >= 0 }) else {
                throw MorphoTrainError.invalidOption(key: "linear-iterations", reason: "one non-negative count per level")
            }
            guard samples >= 64 else { throw MorphoTrainError.invalidOption(key: "linear-samples", reason: "must be at least 64") }
            guard bins >= 8 else { throw MorphoTrainError.invalidOption(key: "bins", reason: "must be at least 8") }
        }

        func stage(_ kind: LinearTransform.Kind) -> LinearStage.Settings {
            var s = LinearStage.Settings(kind: kind)
            s.similarity = similarity
            s.iterations = iterations
            s.samples = samples
            s.bins = bins
            return s
        }
    }

    /// One stage's result, for the summary.
    public struct StageResult: Sendable {
        public var kind: LinearTransform.Kind
        public var outcome: LinearStage.Outcome
        public var seconds: Double
    }

    public struct Result: Sendable {
        /// The final map, fixed → moving world points (RAS mm).
        public var transform: LinearTransform
        /// Where the stages started (after initialisation).
        public var initial: LinearTransform
        public var stages: [StageResult]
        /// Pyramid building and initialisation, seconds.
        public var preparationSeconds: Double
    }

    public var settings: Settings

    public init(_ settings: Settings = Settings()) { self.settings = settings }

    /// Registers `moving` onto `fixed` (each on its own grid; masks on their image's grid,
    /// nonzero = inside).
    public func register(fixed: Volume, moving: Volume, fixedMask: Volume? = nil, movingMask: Volume? = nil) throws -> Result {
        try settings.validate()
        let start = Date()
        let pyramid = LinearPyramid(
            fixed: Registration.normalised(fixed.imageTensor), fixedAffine: fixed.affine,
            moving: Registration.normalised(moving.imageTensor), movingAffine: moving.affine,
            fixedMask: fixedMask?.imageTensor, movingMask: movingMask?.imageTensor,
            shrinkFactors: settings.shrinkFactors, smoothingSigmas: settings.smoothingSigmas)
        // Moments on the middle level: as good as full resolution for a centre and axes, cheaper.
        let middle = pyramid.levels[pyramid.levels.count / 2]
        let initial = settings.initialization.initial(
            fixed: middle.fixed, moving: middle.moving, fixedMask: middle.fixedMask, movingMask: middle.movingMask)
        let preparation = Date().timeIntervalSince(start)
        var transform = initial
        var stages: [StageResult] = []
        for (index, kind) in settings.stages.enumerated() {
            let stageStart = Date()
            var stage = settings.stage(kind)
            // A later stage starts where a converged one ended: small first steps, or its
            // coarse levels would first undo the previous stage's work.
            if index > 0 { stage.initialStep /= 4 }
            let outcome = LinearStage(stage).run(pyramid, from: transform)
            transform = outcome.transform
            stages.append(StageResult(kind: kind, outcome: outcome, seconds: Date().timeIntervalSince(stageStart)))
        }
        return Result(transform: transform, initial: initial, stages: stages, preparationSeconds: preparation)
    }
}
