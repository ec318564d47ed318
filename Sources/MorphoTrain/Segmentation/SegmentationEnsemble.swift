import Foundation
import MorphoIO

/// Several trained models segmenting together (nnU-Net's fold ensemble): each member predicts
/// class probabilities on the input's grid with its own preprocessing and window, the
/// probabilities are averaged, and the argmax of the mean is the label map. One member is plain
/// inference with that model.
public struct SegmentationEnsemble {
    public let members: [Segmenter]
    /// Largest-component steps applied to the labels: by default the steps every member's
    /// checkpoint keeps (all of them for one member).
    public var postprocessing: PostprocessingPlan

    /// The first member's input and class layout is the ensemble's.
    ///
    /// - Precondition: `members` is not empty.
    public init(members: [Segmenter]) {
        precondition(!members.isEmpty, "an ensemble needs a model")
        self.members = members
        let plans = members.map(\.postprocessing)
        postprocessing = PostprocessingPlan(
            foreground: plans.allSatisfy(\.foreground),
            classes: plans[0].classes.filter { k in plans.allSatisfy { $0.classes.contains(k) } },
            connectivity: plans[0].connectivity)
    }

    /// Loads each checkpoint and checks they take the same modalities and predict the same
    /// classes.
    ///
    /// - Throws: `Segmenter.init`'s errors; `MorphoTrainError.mismatch` naming the checkpoint that
    ///   differs from the first.
    public init(checkpoints: [String], mirroring: Bool = false) throws {
        guard let first = checkpoints.first else {
            throw MorphoTrainError.invalidOption(key: "--model", reason: "give at least one checkpoint")
        }
        let members = try checkpoints.map { path in
            let s = try Segmenter(checkpoint: path)
            s.mirroring = mirroring
            return s
        }
        let a = members[0].config
        for (s, path) in zip(members, checkpoints).dropFirst() {
            let b = s.config
            guard b.data.modalities == a.data.modalities, b.model.unet.classes == a.model.unet.classes else {
                throw MorphoTrainError.mismatch(
                    path: path,
                    message: "takes \(b.data.modalities.joined(separator: ", ")) and predicts \(b.model.unet.classes) classes; "
                        + "\(first) takes \(a.data.modalities.joined(separator: ", ")) and predicts \(a.model.unet.classes): they cannot be ensembled")
            }
        }
        self.init(members: members)
    }

    public var config: RunConfig { members[0].config }

    /// Labels and mean probabilities for one subject.
    ///
    /// - Parameters:
    ///   - images: one volume per modality, in the order of `config.data.modalities`, on one grid
    ///     (or one volume holding all modalities as channels).
    ///   - paths: their file names, for errors.
    /// - Returns: labels `[1, D, H, W]` (class indices, postprocessed) and probabilities
    ///   `[K, D, H, W]` (the members' mean), both with the first image's grid and geometry.
    /// - Throws: `MorphoTrainError.mismatch` (wrong number of modalities), `.gridMismatch`,
    ///   `.nonFiniteVoxels`.
    public func segment(_ images: [Volume], paths: [String]) throws -> (labels: Volume, probabilities: Volume) {
        let raw = try members[0].stackedInput(images, paths: paths)
        var mean = members[0].probabilities(raw)
        for m in members.dropFirst() {
            let p = m.probabilities(raw)
            mean.data.withUnsafeMutableBufferPointer { s in
                for i in s.indices { s[i] += p.data[i] }
            }
        }
        if members.count > 1 {
            let scale = 1 / Float(members.count)
            mean.data.withUnsafeMutableBufferPointer { s in
                for i in s.indices { s[i] *= scale }
            }
        }
        var labels = SlidingWindow.argmax(mean)
        postprocessing.apply(to: &labels.data, shape: labels.shape)
        let ref = images[0]
        func volume(_ a: VoxelArray) -> Volume {
            Volume(data: a.data, channels: a.channels, depth: ref.depth, height: ref.height, width: ref.width,
                   spacing: ref.spacing, affine: ref.affine, header: ref.header)
        }
        return (volume(labels), volume(mean))
    }

    /// Reads the input file(s), segments, and writes `output` (labels as uint8, int16 beyond 255
    /// classes) and optionally `probabilities` (float32, one volume per class), both with the
    /// input's geometry. Nothing is written unless everything before succeeded; if the second write
    /// fails the first file is removed.
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
}
