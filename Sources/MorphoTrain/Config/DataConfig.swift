public enum NormalizationKind: String, CaseIterable, Sendable { case zscore, percentile, ct, none }
public enum SpatialAxis: String, CaseIterable, Sendable {
    case x, y, z
    /// Index in the `[D, H, W]` tensor layout.
    public var tensorAxis: Int { self == .z ? 0 : self == .y ? 1 : 2 }
}
public enum ValidationSplitKind: String, CaseIterable, Sendable { case subject, position }

/// Where the training pairs come from.
public enum DataSource: Equatable, Sendable {
    /// Synthetic volumes generated in memory (`data.phantom`).
    case phantom(PhantomConfig)
    /// A CSV file whose header names the columns: one per modality and `label` (and optionally
    /// `split` with values train/validation); paths relative to the manifest's folder.
    case manifest(String)
    /// One glob per modality and one for labels, paired by the text the wildcards matched.
    case globs(images: [String], labels: String)
    /// A dataset folder in the nnU-Net v2 or Medical Segmentation Decathlon layout
    /// (`DatasetFolder`): its `dataset.json` names the channels, labels and cases.
    case dataset(String)
}

/// `data:`.
public struct DataConfig: Equatable, Sendable {
    public var source: DataSource
    /// Channel names, in input-channel order.
    public var modalities: [String]
    public var validation: ValidationConfig
    public var normalization: NormalizationConfig
    /// Target voxel spacing in mm (x, y, z); nil keeps the files' spacing.
    public var spacing: [Double]?
    /// 2D networks: the axis slices are taken along.
    public var sliceAxis: SpatialAxis
    public var patch: PatchConfig
    public var augmentation: AugmentationConfig
    /// Seed of sampling, augmentation and the validation split.
    public var seed: UInt64
    /// Background threads producing batches, and how many batches they may run ahead.
    public var threads: Int
    public var prefetch: Int
    /// The value NaN and infinite image voxels are replaced by (`nan_as`); nil refuses such
    /// images, naming the file and the count. Label maps are always refused.
    public var nanAs: Double?
    /// `folds`: K ≥ 2 cross-validation folds by subject (`CrossValidationSplits`); nil: none.
    public var folds: Int?
    /// `fold` (set by `train --fold k`): the fold whose cases are validated on, 0..<folds;
    /// it replaces `validation.fraction`. nil: the validation fraction as usual.
    public var fold: Int?
    /// `splits` (set by `train --fold`): the `splits.json` the folds are read from, written
    /// there first when absent.
    public var splits: String?

    init(_ s: ConfigSection, model: ModelConfig) throws {
        let sources = ["phantom", "manifest", "images", "dataset"].filter { s.contains($0) }
        guard sources.count == 1 else {
            throw MorphoTrainError.config(
                file: s.file, key: s.path,
                message: sources.isEmpty
                    ? "needs one of phantom, manifest, images (+ labels) or dataset"
                    : "takes only one of phantom, manifest, images, dataset; got \(sources.joined(separator: " and "))")
        }
        let dims = model.unet.dims
        switch sources[0] {
        case "phantom":
            source = .phantom(try PhantomConfig(try s.section("phantom"), dims: dims, classes: model.unet.classes))
            modalities = try s.strings("modalities") ?? ["image"]
            guard modalities.count == 1 else { throw s.error("modalities", "a phantom has one modality") }
        case "manifest":
            let path = try s.string("manifest")!
            source = .manifest(path)
            modalities = try s.strings("modalities") ?? ["image"]
        case "dataset":
            // The channel names come from dataset.json unless listed (a resolved config lists
            // them, so a checkpoint's config parses without the dataset folder).
            let path = try s.string("dataset")!
            source = .dataset(path)
            modalities = try s.strings("modalities") ?? DatasetFolder.channelNames(path)
        default:
            let labels = try s.string("labels")
            guard let labels else { throw s.error("labels", "a glob of label files is required with images") }
            let imagesNode = s.node("images")!
            if case .mapping = imagesNode {
                let section = try s.section("images")
                var names: [String] = [], globs: [String] = []
                for key in section.keys {
                    names.append(key)
                    globs.append(try section.string(key)!)
                }
                try section.finish()
                guard !names.isEmpty else { throw s.error("images", "expected at least one modality glob") }
                source = .globs(images: globs, labels: labels)
                modalities = names
                if try s.strings("modalities") != nil {
                    throw s.error("modalities", "not used when images maps modalities to globs")
                }
            } else {
                let glob = try s.string("images")!
                source = .globs(images: [glob], labels: labels)
                modalities = try s.strings("modalities") ?? ["image"]
                guard modalities.count == 1 else {
                    throw s.error("modalities", "one glob gives one modality; map modality names to globs under images")
                }
            }
        }
        guard Set(modalities).count == modalities.count, !modalities.contains("label"), !modalities.contains("split") else {
            throw s.error("modalities", "names must be distinct and not label or split")
        }
        validation = try ValidationConfig(try s.section("validation"))
        normalization = try NormalizationConfig(try s.section("normalization"))
        spacing = try s.doubles("spacing")
        if let sp = spacing {
            guard sp.count == 3 || (sp.count == 2 && dims == 2), sp.allSatisfy({ $0 > 0 }) else {
                throw s.error("spacing", "expected 3 positive voxel sizes in mm (x, y, z)")
            }
            if sp.count == 2 { spacing = sp + [1] }
        }
        sliceAxis = try s.choice("slice_axis", default: .z)
        patch = try PatchConfig(try s.section("patch"), dims: dims, multiple: model.unet.sizeMultiple)
        augmentation = try AugmentationConfig(try s.section("augmentation"))
        seed = UInt64(try s.int("seed", default: 0, min: 0))
        threads = try s.int("threads", default: 2, min: 1, max: ConfigBounds.threads)
        prefetch = try s.int("prefetch", default: 4, min: 1, max: ConfigBounds.prefetch)
        nanAs = try s.double("nan_as")
        // Cross-validation (CrossValidationSplits).
        folds = try s.int("folds")
        if let k = folds, k < 2 { throw s.error("folds", "must be at least 2, got \(k)") }
        fold = try s.int("fold")
        if let f = fold {
            guard let k = folds else { throw s.error("fold", "needs data.folds") }
            guard (0..<k).contains(f) else { throw s.error("fold", "must be in 0..<\(k) (data.folds: \(k)), got \(f)") }
            guard validation.by == .subject else { throw s.error("fold", "folds split by subject; remove validation.by: position") }
        }
        splits = try s.string("splits")
        try s.finish()
    }

    var resolved: ConfigValue {
        var pairs: [(String, ConfigValue)] = []
        switch source {
        case .phantom(let p): pairs.append(("phantom", p.resolved))
        case .manifest(let m): pairs.append(("manifest", .string(m)))
        case .dataset(let d): pairs.append(("dataset", .string(d)))
        case .globs(let images, let labels):
            if images.count == 1 {
                pairs.append(("images", .string(images[0])))
            } else {
                pairs.append(("images", .map(zip(modalities, images).map { ($0, .string($1)) })))
            }
            pairs.append(("labels", .string(labels)))
        }
        if case .globs(let images, _) = source, images.count > 1 {} else {
            pairs.append(("modalities", .strings(modalities)))
        }
        pairs += [
            ("validation", validation.resolved), ("normalization", normalization.resolved),
            ("spacing", .optional(spacing)), ("slice_axis", .string(sliceAxis.rawValue)),
            ("patch", patch.resolved), ("augmentation", augmentation.resolved),
            ("seed", .int(Int(seed))), ("threads", .int(threads)), ("prefetch", .int(prefetch)),
            ("nan_as", nanAs.map { .number($0) } ?? .null),
        ]
        if let folds { pairs.append(("folds", .int(folds))) }
        if let fold { pairs.append(("fold", .int(fold))) }
        if let splits { pairs.append(("splits", .string(splits))) }
        return .map(pairs)
    }
}


/// `data.validation:`.
public struct ValidationConfig: Equatable, Sendable {
    /// `subject`: whole subjects are held out; `position`: every volume is cut along `axis` and the
    /// last `fraction` of it is held out (for data sets of one or two volumes).
    public var by: ValidationSplitKind
    public var fraction: Double
    public var axis: SpatialAxis

    init(_ s: ConfigSection) throws {
        by = try s.choice("by", default: .subject)
        fraction = try s.double("fraction", default: 0.2, range: 0...0.9)
        axis = try s.choice("axis", default: .z)
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([("by", .string(by.rawValue)), ("fraction", .number(fraction)), ("axis", .string(axis.rawValue))])
    }
}

/// `data.normalization:` — per channel, over the whole volume (or its non-zero voxels).
public struct NormalizationConfig: Equatable, Sendable {
    public var kind: NormalizationKind
    /// Percentiles for `percentile`: values are clipped to [lower, upper] and mapped to [0, 1].
    public var lower: Double
    public var upper: Double
    /// Statistics from non-zero voxels only (skull-stripped images).
    public var nonzero: Bool
    /// `ct` (nnU-Net's CT normalisation, dataset-wide values from `morphoseg plan`): intensities
    /// are clipped to `clip` and mapped to `(x − mean) / std`, the same for every image.
    public var ct: CTIntensities?

    /// The fixed values of `kind: ct`.
    public struct CTIntensities: Equatable, Sendable {
        public var clip: ClosedRange<Double>
        public var mean: Double
        public var std: Double
    }

    init(_ s: ConfigSection) throws {
        kind = try s.choice("kind", default: .zscore)
        lower = try s.double("lower", default: 0.5, range: 0...100)
        upper = try s.double("upper", default: 99.5, range: 0...100)
        guard lower < upper else { throw s.error("upper", "must be above lower (\(lower))") }
        nonzero = try s.bool("nonzero", default: false)
        if kind == .ct {
            guard let clip = try s.doubles("clip"), clip.count == 2, clip[0] <= clip[1] else {
                throw s.error("clip", "ct needs clip: [low, high] (the foreground's 0.5 and 99.5 percentiles)")
            }
            guard let mean = try s.double("mean") else { throw s.error("mean", "ct needs the foreground mean") }
            guard let std = try s.double("std"), std > 0 else { throw s.error("std", "ct needs the foreground std (> 0)") }
            ct = CTIntensities(clip: clip[0]...clip[1], mean: mean, std: std)
        }
        try s.finish()
    }

    var resolved: ConfigValue {
        var pairs: [(String, ConfigValue)] = [
            ("kind", .string(kind.rawValue)), ("lower", .number(lower)), ("upper", .number(upper)), ("nonzero", .bool(nonzero)),
        ]
        if let ct {
            pairs += [
                ("clip", .list([.number(ct.clip.lowerBound), .number(ct.clip.upperBound)])), ("mean", .number(ct.mean)),
                ("std", .number(ct.std)),
            ]
        }
        return .map(pairs)
    }
}

/// `data.patch:` — what one training sample is.
public struct PatchConfig: Equatable, Sendable {
    /// Patch size in voxels, (x, y, z) for 3D or the two in-plane axes for 2D; nil in 2D means
    /// whole slices (padded to the network's size multiple).
    public var size: [Int]?
    /// Fraction of samples centred on a random foreground voxel (the rest are uniform).
    public var foreground: Double

    init(_ s: ConfigSection, dims: Int, multiple: Int) throws {
        size = try s.ints("size")
        if size == nil && dims == 3 { size = [64, 64, 64] }
        if let size {
            guard size.count == dims, size.allSatisfy({ $0 > 0 }) else {
                throw s.error("size", "expected \(dims) positive sizes in voxels")
            }
            if let problem = ConfigBounds.sizeProblem(size) { throw s.error("size", problem) }
            guard size.allSatisfy({ $0 % multiple == 0 }) else {
                throw s.error("size", "\(size) must be multiples of \(multiple) (the product of model.unet.strides)")
            }
        }
        foreground = try s.double("foreground", default: 0.5, range: 0...1)
        try s.finish()
    }

    var resolved: ConfigValue { .map([("size", .optional(size)), ("foreground", .number(foreground))]) }
}

/// `data.augmentation:` — applied to training samples only.
public struct AugmentationConfig: Equatable, Sendable {
    /// Axes mirrored, each with probability 1/2.
    public var flip: [SpatialAxis]
    /// Maximum rotation in degrees (about z in 2D, about each axis in 3D).
    public var rotation: Double
    /// Maximum relative zoom: the scale factor is uniform in [1 − scaling, 1 + scaling].
    public var scaling: Double
    /// Intensity jitter: per channel, `x · (1 + a) + b` with a, b uniform in [−intensity, intensity].
    public var intensity: Double
    /// Probability that a sample gets the rotation/scaling transform.
    public var probability: Double

    public var isIdentity: Bool { flip.isEmpty && (rotation == 0 && scaling == 0 || probability == 0) && intensity == 0 }

    init(_ s: ConfigSection) throws {
        let axes = try s.strings("flip") ?? []
        flip = try axes.enumerated().map { i, name in
            guard let axis = SpatialAxis(rawValue: name) else {
                throw MorphoTrainError.config(file: s.file, key: "\(s.keyPath("flip"))[\(i)]", message: "expected x, y or z, got \"\(name)\"")
            }
            return axis
        }
        rotation = try s.double("rotation", default: 0, range: 0...180)
        scaling = try s.double("scaling", default: 0, range: 0...0.9)
        intensity = try s.double("intensity", default: 0, range: 0...1)
        probability = try s.double("probability", default: 0.5, range: 0...1)
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("flip", .strings(flip.map(\.rawValue))), ("rotation", .number(rotation)), ("scaling", .number(scaling)),
            ("intensity", .number(intensity)), ("probability", .number(probability)),
        ])
    }
}
