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
    }

    /// Labels and probabilities for one subject.
    ///
    /// - Parameters:
    ///   - images: one volume per modality, in the order of `config.data.modalities`, on one grid.
    ///   - paths: their file names, for errors.
    /// - Returns: labels `[1, D, H, W]` (class indices) and probabilities `[K, D, H, W]`, both with
    ///   the first image's grid and geometry.
    /// - Throws: `MorphoTrainError.mismatch` (wrong number of modalities), `.gridMismatch`,
    ///   `.nonFiniteVoxels`.
    public func segment(_ images: [Volume], paths: [String]) throws -> (labels: Volume, probabilities: Volume) {
        let modalities = config.data.modalities
        guard images.count == modalities.count else {
            throw MorphoTrainError.mismatch(
                path: paths.first ?? "input",
                message: "the model takes \(modalities.count) image(s) (\(modalities.joined(separator: ", "))), got \(images.count)")
        }
        for (i, v) in images.enumerated() {
            try SegmentationDataset.checkSameGrid(images[0], paths[0], v, paths[i])
            guard v.channels == 1 else {
                throw MorphoTrainError.mismatch(path: paths[i], message: "expected one channel per modality file, got \(v.channels)")
            }
            try checkFiniteVoxels(v.data, path: paths[i])
        }
        let raw = VoxelArray.stacked(images.map { VoxelArray($0) })
        let prepared = preprocessor.prepareImage(raw)
        let window = SlidingWindow(config, shape: prepared.array.shape)
        let probs = window.probabilities(prepared.array, fill: prepared.fill) { network($0) }
        let restored = prepared.restored(probs, linear: true)
        let labels = SlidingWindow.argmax(restored)
        let ref = images[0]
        func volume(_ a: VoxelArray) -> Volume {
            Volume(data: a.data, channels: a.channels, depth: ref.depth, height: ref.height, width: ref.width,
                   spacing: ref.spacing, affine: ref.affine, header: ref.header)
        }
        return (volume(labels), volume(restored))
    }

    /// Reads the input file(s), segments, and writes `output` (labels as uint8, int16 beyond 255
    /// classes) and optionally `probabilities` (float32, one volume per class), both with the
    /// input's geometry. Nothing is written unless everything before succeeded; if the second write
    /// fails the first file is removed. NaN and infinite input voxels become `nanAs` when given
    /// (`--nan-as`), else they are an error naming the file and the count.
    public func segmentFiles(inputs: [String], output: String, probabilities: String? = nil, nanAs: Float? = nil) throws {
        let volumes = try inputs.map { try NIfTI.read($0).replacingNonFiniteVoxels(with: nanAs) }
        let (labels, probs) = try segment(volumes, paths: inputs)
        let datatype: NIfTIDatatype = config.model.unet.classes <= 256 ? .uint8 : .int16
        try NIfTI.write(labels, to: output, datatype: datatype, like: volumes[0])
        if let probabilities {
            do {
                try NIfTI.write(probs, to: probabilities, datatype: .float32, like: volumes[0])
            } catch {
                try? FileManager.default.removeItem(atPath: output)
                throw error
            }
        }
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
