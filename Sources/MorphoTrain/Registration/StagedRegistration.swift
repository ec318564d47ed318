import Foundation
import MorphoIO
import MorphoTensor

/// Which stages `morphoseg register` runs (ANTs' `-t` presets: `r`, `a`, `s`, and `SyN`'s
/// rigid + affine + deformable).
public enum RegistrationTransform: String, CaseIterable, Codable, Sendable {
    /// A rigid stage only.
    case rigid
    /// Rigid then affine.
    case affine
    /// The deformable stage only (the images' own world placement is the start).
    case deformable
    /// Rigid then deformable (`register --model` with a network trained on `prealign: rigid`).
    case rigidDeformable = "rigid+deformable"
    /// Rigid, affine, then deformable (the default).
    case affineDeformable = "affine+deformable"

    public var linearStages: [LinearTransform.Kind] {
        switch self {
        case .rigid, .rigidDeformable: return [.rigid]
        case .affine, .affineDeformable: return [.rigid, .affine]
        case .deformable: return []
        }
    }

    public var hasDeformableStage: Bool { self == .deformable || self == .rigidDeformable || self == .affineDeformable }

    /// The stages `register` runs when `--transform` is not given: rigid then affine then
    /// deformable, except for a network trained on rigidly pre-aligned pairs
    /// (`registration.prealign: rigid`), whose inputs are aligned the same way at inference.
    public static func standard(for method: RegistrationMethod) -> RegistrationTransform {
        switch method {
        case .model(let model), .refinedModel(let model, _):
            return model.config.registration.prealign == .rigid ? .rigidDeformable : .affineDeformable
        case .optimize:
            return .affineDeformable
        }
    }
}

/// A registration in stages: linear stages (`LinearRegistration`) on the images' own grids,
/// then the moving image resampled through the linear map onto the fixed grid, then the
/// deformable stage (`Registration.register`: optimised or predicted) on that pair.
///
/// The full fixed → moving map is `x ↦ L(x + u(x))`: the deformable field `u` (on the fixed
/// grid) acts first and the linear map `L` carries its result into the moving image — ANTs'
/// `-t Warp.nii.gz -t Affine.mat` order, so `morphoseg apply -t FIELD -t AFFINE` reproduces the
/// warped image. The field written is therefore the deformable part only.
public struct StagedRegistration: Sendable {
    public var transform: RegistrationTransform
    public var linear: LinearRegistration.Settings
    /// The deformable stage (ignored without one).
    public var method: RegistrationMethod
    public var lccWindow: Int

    public init(transform: RegistrationTransform, linear: LinearRegistration.Settings = .init(), method: RegistrationMethod, lccWindow: Int = 9) {
        self.transform = transform
        self.linear = linear
        self.method = method
        self.lccWindow = lccWindow
    }

    /// The images, labels and masks of one run; each label map and mask on its own image's grid.
    public struct Inputs: Sendable {
        public var fixed: Volume, moving: Volume
        public var fixedLabels: Volume?, movingLabels: Volume?
        public var fixedMask: Volume?, movingMask: Volume?
        public var files: RegistrationPairFiles
        /// Mask file names, for errors.
        public var fixedMaskPath: String?, movingMaskPath: String?

        public init(
            fixed: Volume, moving: Volume, fixedLabels: Volume? = nil, movingLabels: Volume? = nil, fixedMask: Volume? = nil,
            movingMask: Volume? = nil, files: RegistrationPairFiles, fixedMaskPath: String? = nil, movingMaskPath: String? = nil
        ) {
            self.fixed = fixed
            self.moving = moving
            self.fixedLabels = fixedLabels
            self.movingLabels = movingLabels
            self.fixedMask = fixedMask
            self.movingMask = movingMask
            self.files = files
            self.fixedMaskPath = fixedMaskPath
            self.movingMaskPath = movingMaskPath
        }

        /// Reads the files (masks optional). NaN and infinite voxels of the two images become
        /// `nanAs` when given (`--nan-as`); otherwise the pair refuses them (`RegistrationPair`).
        public static func load(
            _ files: RegistrationPairFiles, fixedMask: String? = nil, movingMask: String? = nil, nanAs: Float? = nil
        ) throws -> Inputs {
            Inputs(
                fixed: try NIfTI.read(files.fixed).replacingNonFiniteVoxels(with: nanAs),
                moving: try NIfTI.read(files.moving).replacingNonFiniteVoxels(with: nanAs),
                fixedLabels: try files.fixedLabels.map { try NIfTI.read($0) }, movingLabels: try files.movingLabels.map { try NIfTI.read($0) },
                fixedMask: try fixedMask.map { try NIfTI.read($0) }, movingMask: try movingMask.map { try NIfTI.read($0) },
                files: files, fixedMaskPath: fixedMask, movingMaskPath: movingMask)
        }
    }

    public struct Outcome: Sendable {
        /// The deformable stage's result on `pair` (a zero field without one); its quality's
        /// "before" figures are those of the images as given (before any stage).
        public var result: RegistrationResult
        /// The fixed image and the moving side after the linear stages, on the fixed grid.
        public var pair: RegistrationPair
        /// The linear map (nil without linear stages).
        public var linear: LinearTransform?
        public var stages: [RegistrationStageReport]
    }

    /// Runs the stages.
    ///
    /// - Throws: what `RegistrationPair` throws; `MorphoTrainError.gridMismatch` for a mask on
    ///   another grid than its image; `invalidOption` for bad settings.
    public func run(_ inputs: Inputs) throws -> Outcome {
        // The images are checked before any stage reads them (a NaN voxel would poison the linear
        // stages' intensity range): one channel, finite voxels, each error naming the file.
        try RegistrationPair.checkImage(inputs.fixed, path: inputs.files.fixed)
        try RegistrationPair.checkImage(inputs.moving, path: inputs.files.moving)
        for (mask, image, maskPath, imagePath) in [
            (inputs.fixedMask, inputs.fixed, inputs.fixedMaskPath, inputs.files.fixed),
            (inputs.movingMask, inputs.moving, inputs.movingMaskPath, inputs.files.moving),
        ] {
            guard let mask else { continue }
            guard mask.sameGrid(as: image) else {
                throw MorphoTrainError.gridMismatch(
                    first: maskPath ?? "<mask>", second: imagePath,
                    detail: "a mask must lie on its image's grid (\(mask.spatialShape) vs \(image.spatialShape))")
            }
        }
        var stages: [RegistrationStageReport] = []
        var map: LinearTransform?
        if !transform.linearStages.isEmpty {
            var settings = linear
            settings.stages = transform.linearStages
            let result = try LinearRegistration(settings).register(
                fixed: inputs.fixed, moving: inputs.moving, fixedMask: inputs.fixedMask, movingMask: inputs.movingMask)
            map = result.transform
            for (k, stage) in result.stages.enumerated() {
                stages.append(RegistrationStageReport(
                    stage: stage.kind.rawValue, metric: settings.similarity.rawValue, lossBefore: stage.outcome.lossBefore,
                    lossAfter: stage.outcome.lossAfter, seconds: stage.seconds + (k == 0 ? result.preparationSeconds : 0),
                    iterations: stage.outcome.iterations, transform: AffineDecomposition(stage.outcome.transform)))
            }
        }
        // The moving side re-placed in world space by L⁻¹: its voxel q now sits at L⁻¹(A q), so
        // resampling it onto the fixed grid reads the moving image at L(x) for every fixed x.
        var moving = inputs.moving, movingLabels = inputs.movingLabels, movingMask = inputs.movingMask
        if let map {
            let inverse = map.worldMap.inverse
            moving.affine = inverse * moving.affine
            if let labels = movingLabels { movingLabels?.affine = inverse * labels.affine }
            if let mask = movingMask { movingMask?.affine = inverse * mask.affine }
        }
        let pair = try RegistrationPair(
            fixed: inputs.fixed, moving: moving, fixedLabels: inputs.fixedLabels, movingLabels: movingLabels, files: inputs.files)
        let mask = Self.similarityMask(fixed: inputs.fixed, fixedMask: inputs.fixedMask, movingMask: movingMask)
        let (fixedN, movingN) = Registration.normalised(pair.fixed.imageTensor, pair.moving.imageTensor)
        var result: RegistrationResult
        if transform.hasDeformableStage {
            let start = Date()
            result = try Registration.register(pair, method: method, lccWindow: lccWindow, mask: mask,
                                               normalisedImages: (fixedN, movingN))
            let seconds = Date().timeIntervalSince(start)
            var kind = SimilarityKind.lcc, window = lccWindow
            if case .optimize(let s) = method { kind = s.similarity; window = s.lccWindow }
            let loss = SimilarityLoss(kind: kind, window: window)
            let (before, after) = withoutGradients {
                (Double(loss(fixedN, movingN, mask: mask).item), Double(loss(fixedN, warp(movingN, result.flow), mask: mask).item))
            }
            stages.append(RegistrationStageReport(stage: "deformable", metric: kind.rawValue, lossBefore: before, lossAfter: after, seconds: seconds))
        } else {
            let zero = Tensor.zeros([1, inputs.fixed.is2D ? 2 : 3] + inputs.fixed.imageTensor.spatialShape)
            result = RegistrationResult(flow: zero, pair: pair, fixedImage: fixedN, movingImage: movingN, lccWindow: lccWindow)
        }
        if let map {
            // The outputs read the moving image once, at L(x + u(x)), as `apply -t FIELD -t AFFINE`
            // does (not the already resampled pair: one interpolation, not two).
            let field = ITKDisplacementField(voxels: DisplacementFieldVolume.volume(fromFlow: result.flow, on: inputs.fixed))
            let chain = TransformChain([.field(field), .affine(map.itk)])
            result.warped = inputs.fixed.replacingData(
                with: TransformApplication.apply(chain, to: inputs.moving, reference: inputs.fixed, interpolation: .linear).imageTensor)
            if let labels = inputs.movingLabels {
                let warped = TransformApplication.apply(chain, to: labels, reference: inputs.fixed, interpolation: .nearest)
                result.warpedLabels = inputs.fixed.replacingData(with: warped.imageTensor)
                if let fixedLabels = inputs.fixedLabels, let before = result.quality.diceBefore {
                    let after = RegistrationMetrics.dicePerLabel(fixedLabels.imageTensor, warped.imageTensor, labels: before.map(\.label))
                    result.quality.diceAfter = after
                    result.quality.meanDiceAfter = RegistrationMetrics.meanDice(after)
                }
            }
            // "Before" means the images as given, not after the linear stages.
            let original = try RegistrationPair(
                fixed: inputs.fixed, moving: inputs.moving, fixedLabels: inputs.fixedLabels, movingLabels: inputs.movingLabels,
                files: inputs.files)
            let unaligned = RegistrationResult(
                flow: Tensor.zeros(Array(result.flow.shape)), pair: original, fixedImage: fixedN,
                movingImage: Registration.normalised(original.moving.imageTensor), lccWindow: lccWindow)
            result.quality.similarityBefore = unaligned.quality.similarityBefore
            result.quality.diceBefore = unaligned.quality.diceBefore
            result.quality.meanDiceBefore = unaligned.quality.meanDiceBefore
        }
        return Outcome(result: result, pair: pair, linear: map, stages: stages)
    }

    /// The deformable stage's similarity region on the fixed grid: the fixed mask times the
    /// moving mask carried onto the fixed grid by the linear map (nearest neighbour; it does not
    /// follow the deformation). Nil without masks.
    static func similarityMask(fixed: Volume, fixedMask: Volume?, movingMask: Volume?) -> Tensor? {
        guard fixedMask != nil || movingMask != nil else { return nil }
        var values = [Float](repeating: 1, count: fixed.spatialCount)
        if let fixedMask { for v in values.indices where fixedMask.data[v] == 0 { values[v] = 0 } }
        if let movingMask {
            let onFixed = WorldResampling.resample(movingMask, onto: fixed, interpolation: .nearest).volume
            for v in values.indices where onFixed.data[v] == 0 { values[v] = 0 }
        }
        return Tensor(shape: fixed.imageTensor.shape, data: values)
    }
}
