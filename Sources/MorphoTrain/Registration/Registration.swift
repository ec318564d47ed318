import Foundation
import MorphoKernels
import MorphoTensor

/// How the field of a pair is obtained.
public enum RegistrationMethod: Sendable {
    /// Optimise the field for this pair (no model).
    case optimize(InstanceOptimization.Settings)
    /// Predict it with a trained network.
    case model(RegistrationModel)
    /// Predict it with a trained network, then refine the prediction for this pair by instance
    /// optimisation at full resolution (`ModelRefinement`).
    case refinedModel(RegistrationModel, ModelRefinement)
}

/// Registration of one loaded pair: intensities normalised, field computed, applied and measured.
public enum Registration {
    /// Registers `pair` (moving already on the fixed grid) by `method`.
    ///
    /// `.optimize` normalises each image (percentiles 0.5–99.5 mapped to [0, 1], what LCC and the
    /// smoothness weight are tuned for) before optimising; `.model` applies its run's own
    /// preprocessing. The quality figures compare the percentile-normalised images either way.
    /// `mask` (`[1, 1, spatial…]` on the fixed grid, 1 inside) restricts the similarity of `.optimize`
    /// and of `.refinedModel`'s refinement (a network's own prediction takes no mask).
    /// `normalisedImages`, when the caller has them already, are `normalised` of the pair's images
    /// (each takes a copy and two selections of the volume: ~0.15 s at 160×192×224).
    public static func register(
        _ pair: RegistrationPair, method: RegistrationMethod, lccWindow: Int = 9, mask: Tensor? = nil,
        normalisedImages: (fixed: Tensor, moving: Tensor)? = nil,
        progress: ((InstanceOptimization.Step) -> Void)? = nil
    ) throws -> RegistrationResult {
        let (fixed, moving) = normalisedImages ?? (normalised(pair.fixed.imageTensor), normalised(pair.moving.imageTensor))
        let flow: Tensor
        var refinement: ModelRefinement.Figures?
        switch method {
        case .optimize(let settings):
            try settings.validate()
            flow = InstanceOptimization(settings).register(fixed: fixed, moving: moving, mask: mask, progress: progress)
        case .model(let model):
            flow = try model.predict(pair)
        case .refinedModel(let model, let refine):
            (flow, refinement) = try refine.register(
                pair, model: model, fixed: fixed, moving: moving, lccWindow: lccWindow, mask: mask, progress: progress)
        }
        var result = RegistrationResult(flow: flow, pair: pair, fixedImage: fixed, movingImage: moving, lccWindow: lccWindow)
        result.refinement = refinement
        return result
    }

    /// `normalised` of two images side by side, one per core (each is a copy and two serial
    /// selections: ~0.15 s at 160×192×224).
    static func normalised(_ a: Tensor, _ b: Tensor) -> (Tensor, Tensor) {
        Parallel.both({ normalised(a) }, { normalised(b) })
    }

    /// `[1, 1, spatial…]` with values clipped to the 0.5 and 99.5 percentiles and mapped to [0, 1].
    static func normalised(_ image: Tensor) -> Tensor {
        let spatial = image.spatialShape
        let dhw = spatial.count == 3 ? spatial : [1] + spatial
        var array = VoxelArray(data: image.scalars, channels: 1, shape: dhw, spacing: [1, 1, 1])
        percentileNormalization.apply(to: &array)
        return Tensor(shape: image.shape, data: array.data)
    }

    static let percentileNormalization: NormalizationConfig = {
        // NormalizationConfig is read from config sections; this is the `percentile` default.
        try! NormalizationConfig(ConfigSection(yaml: "kind: percentile\nlower: 0.5\nupper: 99.5", file: "<registration>"))
    }()
}
