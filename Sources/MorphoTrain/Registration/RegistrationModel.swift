import Foundation
import MorphoDistributed
import MorphoIO
import MorphoKernels
import MorphoNN
import MorphoTensor

/// A trained registration network ready to register pairs: the `DisplacementNet` of a
/// checkpoint and the preprocessing its run used.
public final class RegistrationModel: @unchecked Sendable {
    public let config: RegistrationRunConfig
    public let network: DisplacementNet
    public let path: String

    /// Reads a checkpoint written by a registration run, or the displacement network (`reg.`
    /// tensors) of a joint run. The checkpoint is read once; its embedded config is parsed by
    /// `TaskConfig(checkpoint:path:)`, the one reader of checkpoint configs.
    ///
    /// - Throws: `MorphoIOError` / `MorphoTrainError.checkpoint` for unreadable or foreign files,
    ///   `MorphoTrainError.modelMismatch` when the checkpoint is not a registration model or has
    ///   no registration section in its metadata.
    public static func load(_ path: String) throws -> RegistrationModel {
        let checkpoint = try Checkpoint.read(path)
        let config: RegistrationRunConfig
        switch try TaskConfig(checkpoint: checkpoint, path: path) {
        case .registration(let c): config = c
        case .joint(let c): config = c.registrationRun
        case .segmentation:
            throw MorphoTrainError.modelMismatch(path: path, reason: "a \(checkpoint.task.rawValue) checkpoint, not a registration model")
        }
        let network = makeDisplacementNet(config)
        try checkpoint.registrationPart().load(into: network, path: path)
        network.setTraining(false)
        return RegistrationModel(config: config, network: network, path: path)
    }

    init(config: RegistrationRunConfig, network: DisplacementNet, path: String) {
        self.config = config
        self.network = network
        self.path = path
    }

    /// The field `[1, nd, spatial…]` (voxels of the fixed grid) the network predicts for `pair`,
    /// after the run's preprocessing (normalisation, target spacing, padding to the network's
    /// size multiple); the field is cropped back and, if the run resampled, resized to the fixed
    /// grid with its values rescaled.
    ///
    /// - Throws: `MorphoTrainError.modelMismatch` when the pair's dimensionality is not the model's.
    public func predict(_ pair: RegistrationPair) throws -> Tensor {
        let dims = config.run.model.dims
        guard (dims == 2) == pair.fixed.is2D else {
            throw MorphoTrainError.modelMismatch(path: path, reason: "a \(dims)D model cannot register \(pair.fixed.is2D ? "2D" : "3D") images")
        }
        let pre = Preprocessor(
            normalization: config.run.data.normalization, targetSpacing: config.run.data.spacing, dims: dims, sliceAxis: .z,
            multiple: config.registration.network.sizeMultiple, minimumSize: [1, 1, 1])
        let (fixed, moving) = Parallel.both({ pre.prepareImage(VoxelArray(pair.fixed)) }, { pre.prepareImage(VoxelArray(pair.moving)) })
        let shape = fixed.array.shape
        let spatial = dims == 3 ? shape : Array(shape.dropFirst())
        let flow: Tensor = withoutGradients {
            network(
                moving: Tensor(shape: [1, 1] + spatial, data: moving.array.data),
                fixed: Tensor(shape: [1, 1] + spatial, data: fixed.array.data))
        }
        let cropped = fixed.unpadded(VoxelArray(data: flow.scalars, channels: dims, shape: shape, spacing: fixed.array.spacing))
        let croppedSpatial = dims == 3 ? cropped.shape : Array(cropped.shape.dropFirst())
        let field = Tensor(shape: [1, dims] + croppedSpatial, data: cropped.data)
        let rawSpatial = dims == 3 ? pair.fixed.spatialShape : [pair.fixed.height, pair.fixed.width]
        return croppedSpatial == rawSpatial ? field : withoutGradients { resizeDisplacement(field, to: rawSpatial) }
    }
}
