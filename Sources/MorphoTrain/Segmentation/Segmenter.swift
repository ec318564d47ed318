import Foundation
import MorphoIO
import MorphoNN
import MorphoTensor

/// Segments NIfTI images with a trained checkpoint, the way training validated: the same
/// preprocessing (normalisation, resampling, 2D slice layout, padding), sliding-window inference
/// with overlap blending, then the class probabilities mapped back to the input grid (padding
/// removed, axes restored, linear resampling) and their argmax as labels.
public final class Segmenter {
    public let checkpoint: Checkpoint
    public var config: RunConfig { checkpoint.config }
    public let network: UNet
    let preprocessor: Preprocessor
    /// Largest-component steps applied to the labels: the checkpoint's decided plan
    /// (`PostprocessingPlan`, metadata `postprocessing`; none when absent). Set it to change them.
    public var postprocessing: PostprocessingPlan

    /// Loads a checkpoint written by training (`best.safetensors` or `last.safetensors`).
    ///
    /// - Throws: `MorphoIOError` for a missing or malformed file, `MorphoTrainError.checkpoint`.
    ///
    /// A joint checkpoint's U-Net was trained on images padded to the displacement network's
    /// size multiple (a multiple of the U-Net's); its inputs are padded the same way, since under
    /// instance norm the share of padding changes the output (MNI152 slices: GM/WM Dice 0.77 /
    /// 0.75 with the U-Net's multiple, 0.82 / 0.82 — the validation figures — with the joint one).
    public init(checkpoint path: String) throws {
        let stored = try Checkpoint.read(path)
        checkpoint = stored.segmentationPart()  // a joint checkpoint's `seg.` U-Net
        guard checkpoint.task == .segmentation else {
            throw MorphoTrainError.checkpoint(path: path, message: "is a \(checkpoint.task.rawValue) model, not a segmentation model")
        }
        network = makeUNet(checkpoint.config)
        try checkpoint.load(into: network, path: path)
        network.setTraining(false)
        var preprocessor = Preprocessor(checkpoint.config)
        if stored.task == .joint {
            preprocessor.multiple = try JointRunConfig.load(checkpoint: path).registration.network.sizeMultiple
        }
        self.preprocessor = preprocessor
        postprocessing = try Self.storedPostprocessing(stored, path: path)
    }

    /// The plan stored in a checkpoint (none when it has no `postprocessing` entry).
    static func storedPostprocessing(_ c: Checkpoint, path: String) throws -> PostprocessingPlan {
        guard let text = c.extraMetadata[PostprocessingPlan.metadataKey] else { return PostprocessingPlan() }
        guard let plan = PostprocessingPlan(json: text) else {
            throw MorphoTrainError.checkpoint(path: path, message: "metadata \(PostprocessingPlan.metadataKey) is not a postprocessing plan: \(text)")
        }
        return plan
    }

    /// Average over mirrored inputs (`TestTimeMirroring`) in `probabilities(_:)`.
    public var mirroring = false

    /// Labels and probabilities for one subject (`SegmentationEnsemble` of this model alone).
    ///
    /// - Parameters:
    ///   - images: one volume per modality, in the order of `config.data.modalities`, on one grid
    ///     (or one volume holding all modalities as channels).
    ///   - paths: their file names, for errors.
    /// - Returns: labels `[1, D, H, W]` (class indices, postprocessed) and probabilities
    ///   `[K, D, H, W]`, both with the first image's grid and geometry.
    /// - Throws: `MorphoTrainError.mismatch` (wrong number of modalities), `.gridMismatch`,
    ///   `.nonFiniteVoxels`.
    public func segment(_ images: [Volume], paths: [String]) throws -> (labels: Volume, probabilities: Volume) {
        try SegmentationEnsemble(members: [self]).segment(images, paths: paths)
    }

    /// Writes the labels (and probabilities) of the input file(s); see
    /// `SegmentationEnsemble.segmentFiles`.
    public func segmentFiles(inputs: [String], output: String, probabilities: String? = nil, nanAs: Float? = nil) throws {
        try SegmentationEnsemble(members: [self]).segmentFiles(inputs: inputs, output: output, probabilities: probabilities, nanAs: nanAs)
    }

    /// The input volumes checked and stacked as `[C, D, H, W]` in modality order.
    ///
    /// - Throws: as `segment`.
    public func stackedInput(_ images: [Volume], paths: [String]) throws -> VoxelArray {
        let modalities = config.data.modalities
        // One file per modality, or one file holding them all (a Decathlon 4D image).
        let oneFile = images.count == 1 && images[0].channels == modalities.count && modalities.count > 1
        guard images.count == modalities.count || oneFile else {
            throw MorphoTrainError.mismatch(
                path: paths.first ?? "input",
                message: "the model takes \(modalities.count) image(s) (\(modalities.joined(separator: ", "))), got \(images.count)")
        }
        for (i, v) in images.enumerated() {
            try SegmentationDataset.checkSameGrid(images[0], paths[0], v, paths[i])
            guard v.channels == 1 || oneFile else {
                throw MorphoTrainError.mismatch(path: paths[i], message: "expected one channel per modality file, got \(v.channels)")
            }
            try checkFiniteVoxels(v.data, path: paths[i])
        }
        return VoxelArray.stacked(images.map { VoxelArray($0) })
    }

    /// Class probabilities `[K, D, H, W]` on the grid of `raw` (`[C, D, H, W]`, as the files hold
    /// it): preprocessing, sliding-window inference (over the mirrored inputs too when
    /// `mirroring`), then the mapping back (padding removed, axes restored, linear resampling).
    public func probabilities(_ raw: VoxelArray) -> VoxelArray {
        let prepared = preprocessor.prepareImage(raw)
        let window = SlidingWindow(config, shape: prepared.array.shape)
        let network = self.network
        func predict(_ a: VoxelArray) -> VoxelArray { window.probabilities(a, fill: prepared.fill) { network($0) } }
        let probs = mirroring
            ? TestTimeMirroring.probabilities(prepared.array, axes: TestTimeMirroring.axes(dims: config.model.unet.dims), predict: predict)
            : predict(prepared.array)
        return prepared.restored(probs, linear: true)
    }

    /// NIfTI files in a folder (`.nii`, `.nii.gz`), sorted.
    public static func niftiFiles(in folder: String) throws -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw MorphoTrainError.fileNotFound(path: folder, role: "input folder")
        }
        let files = names.filter { $0.hasSuffix(".nii") || $0.hasSuffix(".nii.gz") }.sorted().map { "\(folder)/\($0)" }
        guard !files.isEmpty else { throw MorphoTrainError.dataset(source: folder, message: "no .nii or .nii.gz files") }
        return files
    }
}
