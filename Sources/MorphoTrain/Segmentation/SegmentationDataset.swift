import Foundation
import MorphoIO
import MorphoKernels

/// One subject ready for sampling: image and labels in the network's layout, the signed distance
/// maps of its label classes (computed once here, then cropped with every patch) and the list of
/// foreground voxels for oversampling.
public final class Subject: Sendable {
    public let id: String
    /// Normalised image `[C, D, H, W]` and the mapping back to its file grid.
    public let prepared: PreparedImage
    /// Class indices `[1, D, H, W]` on the same grid as `image`.
    public let labels: VoxelArray
    /// Signed distance to each class boundary `[K, D, H, W]` in mm (`signedDistance` of
    /// MorphoKernels: > 0 outside the class, ≤ 0 inside; all 0 for an absent class). Computed per
    /// slice (in-plane spacing) for 2D networks and per volume for 3D ones; nil when no loss needs it.
    public let distances: VoxelArray?
    /// Flat `[D, H, W]` indices of voxels with a label > 0.
    public let foreground: [Int32]

    public var image: VoxelArray { prepared.array }
    public var shape: [Int] { prepared.array.shape }

    public init(id: String, prepared: PreparedImage, labels: VoxelArray, classes: Int, distances: Bool, sliceWise: Bool) {
        precondition(labels.shape == prepared.array.shape, "labels and image grids differ")
        self.id = id
        self.prepared = prepared
        self.labels = labels
        var fg: [Int32] = []
        for (i, v) in labels.data.enumerated() where v > 0 { fg.append(Int32(i)) }
        foreground = fg
        self.distances = distances ? Self.signedDistances(labels, classes: classes, sliceWise: sliceWise) : nil
    }

    /// `[K, D, H, W]` signed distance maps of `labels == k`.
    /// `labels` holds class indices as floats (`Int(value)` is the class); slice-wise maps use the
    /// in-plane spacing `(H, W)`. The maps come from `classSignedDistances` (MorphoKernels).
    static func signedDistances(_ labels: VoxelArray, classes: Int, sliceWise: Bool) -> VoxelArray {
        let n = labels.spatialCount
        let (d, h, w) = (labels.shape[0], labels.shape[1], labels.shape[2])
        let indices = labels.data.map { Int32(clamping: Int($0)) }
        var out = [Float](repeating: 0, count: classes * n)
        guard classes > 0 else { return VoxelArray(data: out, channels: 0, shape: labels.shape, spacing: labels.spacing) }
        indices.withUnsafeBufferPointer { y in
            out.withUnsafeMutableBufferPointer { dst in
                if sliceWise {
                    for z in 0..<d {
                        classSignedDistances(
                            labels: UnsafeBufferPointer(rebasing: y[(z * h * w)..<((z + 1) * h * w)]), classes: classes,
                            shape: [h, w], spacing: [labels.spacing[1], labels.spacing[2]], classStride: n,
                            into: dst.baseAddress! + z * h * w)
                    }
                } else {
                    classSignedDistances(
                        labels: y, classes: classes, shape: labels.shape, spacing: labels.spacing, classStride: n,
                        into: dst.baseAddress!)
                }
            }
        }
        return VoxelArray(data: out, channels: classes, shape: labels.shape, spacing: labels.spacing)
    }
}

/// A subject as read from disk (or generated), before preprocessing: image `[C, z, y, x]` with
/// its channels stacked in modality order, and the label map on the same grid.
public struct RawSubject: Sendable {
    public var id: String
    public var image: VoxelArray
    public var labels: VoxelArray
    /// Where it came from (for error messages): image paths, then the label path.
    public var sources: [String]
    public var split: String?
    /// The subject the case belongs to, when the case list names it (folds keep a subject's
    /// cases together); nil: the case is its own subject.
    public var subject: String? = nil
    /// The first modality's volume (geometry donor for outputs).
    public var reference: Volume

    public init(id: String, image: VoxelArray, labels: VoxelArray, sources: [String], split: String? = nil, reference: Volume) {
        self.id = id
        self.image = image
        self.labels = labels
        self.sources = sources
        self.split = split
        self.reference = reference
    }
}

/// Training and validation subjects of a segmentation run.
public struct SegmentationDataset: Sendable {
    public var training: [Subject]
    public var validation: [Subject]
    public var classes: Int

    /// Reads (or generates) every subject the config names, checks it, splits it and prepares it.
    ///
    /// - Parameter distances: compute signed distance maps (for the boundary loss).
    /// - Throws: `MorphoTrainError` (missing files, mismatched grids, NaN voxels, bad labels, empty
    ///   splits) or `MorphoIOError` from the NIfTI reader.
    public static func load(_ config: RunConfig, distances: Bool) throws -> SegmentationDataset {
        let classes = config.model.unet.classes
        var raws: [RawSubject] = []
        switch config.data.source {
        case .phantom(let p):
            for i in 0..<p.count {
                let (image, label) = Phantom.make(p, index: i)
                raws.append(RawSubject(
                    id: String(format: "phantom%03d", i), image: VoxelArray(image), labels: VoxelArray(label),
                    sources: ["phantom \(i)"], reference: image))
            }
        case .manifest(let path):
            let cases = try CaseList.manifest(path, modalities: config.data.modalities)
            raws = try cases.map { try read($0, classes: classes, nanAs: config.data.nanAs.map(Float.init)) }
        case .globs(let images, let labels):
            let cases = try CaseList.globs(images: images, labels: labels)
            raws = try cases.map { try read($0, classes: classes, nanAs: config.data.nanAs.map(Float.init)) }
        case .dataset(let path):
            let folder = try DatasetFolder.read(path)
            try folder.check(against: config)
            try DatasetCheck.headers(folder)
            raws = try folder.training.map {
                try read($0, classes: classes, declaredLabels: folder.labels, nanAs: config.data.nanAs.map(Float.init))
            }
        }
        return try make(raws, config: config, distances: distances)
    }

    /// Reads one subject's files and checks them. A file may hold several channels (a
    /// Decathlon 4D image); `declaredLabels` (a dataset folder's class names) words a bad label
    /// value against `dataset.json`. NaN and infinite image voxels become `nanAs` when given
    /// (`data.nan_as`), else they are an error.
    public static func read(_ c: CaseFiles, classes: Int, declaredLabels: [String]? = nil, nanAs: Float? = nil) throws -> RawSubject {
        try CaseList.checkExists(c)
        let volumes = try c.images.map { try NIfTI.read($0).replacingNonFiniteVoxels(with: nanAs) }
        for (i, v) in volumes.enumerated() {
            try checkSameGrid(volumes[0], c.images[0], v, c.images[i])
            try checkFiniteVoxels(v.data, path: c.images[i])
        }
        guard let labelPath = c.label else {
            throw MorphoTrainError.dataset(source: c.images[0], message: "no label file for subject \(c.id)")
        }
        let label = try NIfTI.read(labelPath)
        try checkSameGrid(volumes[0], c.images[0], label, labelPath)
        guard label.channels == 1 else {
            throw MorphoTrainError.dataset(source: labelPath, message: "a label map needs one channel, this file has \(label.channels)")
        }
        if let declaredLabels {
            try DatasetCheck.labelValues(label.data, path: labelPath, labels: declaredLabels)
        }
        try checkLabels(label.data, classes: classes, path: labelPath)
        var raw = RawSubject(
            id: c.id, image: VoxelArray.stacked(volumes.map { VoxelArray($0) }), labels: VoxelArray(label),
            sources: c.images + [labelPath], split: c.split, reference: volumes[0])
        raw.subject = c.subject
        return raw
    }

    /// - Throws: `MorphoTrainError.gridMismatch` naming both files.
    public static func checkSameGrid(_ a: Volume, _ pathA: String, _ b: Volume, _ pathB: String) throws {
        try checkSameGrid((a.spatialShape, a.affine), pathA, (b.spatialShape, b.affine), pathB)
    }

    /// The same check on spatial shapes `[D, H, W]` and affines (from headers, say).
    public static func checkSameGrid(_ a: (shape: [Int], affine: Affine), _ pathA: String, _ b: (shape: [Int], affine: Affine), _ pathB: String) throws {
        if a.shape != b.shape {
            throw MorphoTrainError.gridMismatch(
                first: pathA, second: pathB,
                detail: "sizes (x, y, z) \(AxisOrder.xyz(fromDHW: a.shape)) vs \(AxisOrder.xyz(fromDHW: b.shape))")
        }
        if !a.affine.isApproximatelyEqual(to: b.affine, tolerance: 1e-3) {
            throw MorphoTrainError.gridMismatch(first: pathA, second: pathB, detail: "voxel-to-world affines differ")
        }
    }

    /// - Throws: `MorphoTrainError.nonFiniteVoxels` or `.badLabel` for the first bad value.
    public static func checkLabels(_ values: [Float], classes: Int, path: String) throws {
        try checkFiniteVoxels(values, path: path)
        if let bad = values.first(where: { $0 != $0.rounded() || $0 < 0 || $0 >= Float(classes) }) {
            throw MorphoTrainError.badLabel(path: path, value: bad, classes: classes)
        }
    }

    /// Splits and prepares raw subjects as `config.data` says.
    public static func make(_ raws: [RawSubject], config: RunConfig, distances: Bool) throws -> SegmentationDataset {
        let pre = Preprocessor(config)
        let classes = config.model.unet.classes
        let v = config.data.validation
        let sliceWise = config.model.unet.dims == 2
        let source = sourceName(config.data.source)
        guard !raws.isEmpty else { throw MorphoTrainError.dataset(source: source, message: "no subjects") }
        for r in raws { try checkFiniteVoxels(r.image.data, path: r.sources.first ?? r.id) }

        func subject(_ id: String, _ image: VoxelArray, _ labels: VoxelArray) -> Subject {
            let prepared = pre.placeImage(image)
            return Subject(
                id: id, prepared: prepared, labels: pre.prepareLabels(labels), classes: classes,
                distances: distances, sliceWise: sliceWise)
        }

        var training: [Subject] = [], validation: [Subject] = []
        switch v.by {
        case .subject:
            var heldOut = Set<Int>()
            if let fold = config.data.fold {
                heldOut = try CrossValidationSplits.validationIndices(raws, config: config, fold: fold)
            } else if raws.contains(where: { $0.split != nil }) {
                heldOut = Set(raws.indices.filter { raws[$0].split == "validation" })
            } else if v.fraction > 0 && raws.count >= 2 {
                var order = Array(raws.indices)
                var rng = SeedStream.generator(seed: config.data.seed, 0x53504C54)
                order.shuffle(using: &rng)
                let n = min(raws.count - 1, max(1, Int((v.fraction * Double(raws.count)).rounded())))
                heldOut = Set(order.suffix(n))
            }
            for (i, r) in raws.enumerated() {
                var image = r.image
                config.data.normalization.apply(to: &image)
                let s = subject(r.id, image, r.labels)
                if heldOut.contains(i) { validation.append(s) } else { training.append(s) }
            }
        case .position:
            let axis = v.axis.tensorAxis
            for r in raws {
                var image = r.image
                config.data.normalization.apply(to: &image)
                let n = r.image.shape[axis]
                let held = Int((v.fraction * Double(n)).rounded())
                guard held > 0 || v.fraction == 0, held < n else {
                    throw MorphoTrainError.config(
                        file: source, key: "data.validation.fraction",
                        message: "\(r.id) has \(n) voxels along \(v.axis.rawValue); \(v.fraction) of it leaves nothing on one side")
                }
                func part(_ a: VoxelArray, _ range: Range<Int>) -> VoxelArray {
                    var origin = [0, 0, 0], size = a.shape
                    origin[axis] = range.lowerBound
                    size[axis] = range.count
                    return a.cropped(origin: origin, size: size, fill: Array(repeating: 0, count: a.channels))
                }
                training.append(subject(r.id + "-train", part(image, 0..<(n - held)), part(r.labels, 0..<(n - held))))
                if held > 0 {
                    validation.append(subject(r.id + "-validation", part(image, (n - held)..<n), part(r.labels, (n - held)..<n)))
                }
            }
        }
        guard !training.isEmpty else {
            throw MorphoTrainError.dataset(source: source, message: "no training subjects left after the validation split")
        }
        return SegmentationDataset(training: training, validation: validation, classes: classes)
    }

    static func sourceName(_ s: DataSource) -> String {
        switch s {
        case .phantom: return "data.phantom"
        case .manifest(let p): return p
        case .globs(_, let labels): return labels
        case .dataset(let p): return p
        }
    }
}
