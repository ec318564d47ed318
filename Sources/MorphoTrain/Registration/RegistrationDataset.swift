import Foundation
import MorphoIO
import MorphoTensor

/// One image prepared for a registration network: normalised (`data.normalization`), resampled
/// to `data.spacing` if set, padded to the network's size multiple and then to the data set's
/// common shape; labels (class indices) on the same grid.
public struct RegistrationImage: Sendable {
    public var id: String
    /// `[1, D, H, W]` (D = 1 for 2D).
    public var image: VoxelArray
    public var labels: VoxelArray?

    /// `[1, 1, D, H, W]` (3D) or `[1, 1, H, W]` (2D).
    func tensor(_ a: VoxelArray, dims: Int) -> Tensor {
        Tensor(shape: [1, 1] + (dims == 3 ? a.shape : Array(a.shape.dropFirst())), data: a.data)
    }
}

/// A fixed/moving pair of prepared images on one grid.
public struct PreparedPair: Sendable {
    public var fixed: RegistrationImage
    public var moving: RegistrationImage
}

/// The training and validation data of a registration run.
///
/// - `synthetic` and `random` pairs are drawn per batch from `images`; `atlas` and `listed` pairs
///   are the fixed list `pairs`.
/// - Validation is a fixed list of pairs made once (seeded): synthetic deformations of the
///   held-out images, consecutive held-out images, or the held-out part of the pair list. The
///   held-out images are the manifest's `split: validation` rows when it has a `split` column,
///   else a seeded `data.validation.fraction` of them.
/// - Every image shares one shape (`shape`, `[D, H, W]`) so pairs batch together.
public struct RegistrationDataset: Sendable {
    public var mode: RegistrationPairMode
    public var images: [RegistrationImage]
    public var pairs: [PreparedPair]
    public var validation: [PreparedPair]
    /// Label classes including background (0 without labels).
    public var classes: Int
    public var shape: [Int]
    public var dims: Int
    /// The linear maps of `registration.prealign`, in the order computed or read, and how many
    /// of them were computed (the rest came from the cache).
    var prealignments: [Prealignment.Record] = []
    var prealignmentsComputed = 0

    /// Reads (or generates) and prepares everything `config` names, pre-aligning real subject
    /// pairs when `registration.prealign` asks (`Prealignment`: maps cached in `cacheFolder`
    /// when given, one line per map to `log`).
    ///
    /// - Throws: `MorphoTrainError` / `MorphoIOError` naming the file.
    public static func load(
        _ config: RegistrationRunConfig, cacheFolder: String? = nil, log: @escaping (String) -> Void = { _ in }
    ) throws -> RegistrationDataset {
        let run = config.run, reg = config.registration
        let dims = run.model.dims
        var loader = Loader(config: config)
        var prealignment = reg.prealign.settings.map { Prealignment(settings: $0, cacheFolder: cacheFolder, log: log) }
        var records: [Prealignment.Record] = []
        /// `moving` and its labels re-placed by the pre-alignment onto `fixed` (unchanged without).
        func prealigned(_ moving: Volume, _ labels: Volume?, _ id: String, onto fixed: Volume, _ fixedID: String) throws -> (Volume, Volume?) {
            guard prealignment != nil else { return (moving, labels) }
            let aligned = try prealignment!.align(moving, labels: labels, id: id, onto: fixed, fixedID: fixedID)
            records.append(aligned.record)
            return (aligned.image, aligned.labels)
        }
        func finish(_ dataset: inout RegistrationDataset) {
            dataset.prealignments = records
            dataset.prealignmentsComputed = prealignment?.computed ?? 0
        }
        let nanAs = run.data.nanAs.map(Float.init)   // data.nan_as: images only, never label maps
        switch reg.pairs {
        case .synthetic, .random:
            var raws: [(id: String, image: Volume, labels: Volume?, split: String?)] = []
            switch run.data.source {
            case .phantom(let p):
                for i in 0..<p.count {
                    let (image, label) = Phantom.make(p, index: i)
                    raws.append((String(format: "phantom%03d", i), image, label, nil))
                }
            case .manifest(let path):
                for c in try CaseList.manifest(path, modalities: run.data.modalities, requireLabels: false) {
                    raws.append((c.id, try NIfTI.read(c.images[0]).replacingNonFiniteVoxels(with: nanAs), try c.label.map { try NIfTI.read($0) }, c.split))
                }
            case .globs(let images, let labels):
                for c in try CaseList.globs(images: images, labels: labels) {
                    raws.append((c.id, try NIfTI.read(c.images[0]).replacingNonFiniteVoxels(with: nanAs), try c.label.map { try NIfTI.read($0) }, nil))
                }
            case .dataset(let path):
                for c in try DatasetFolder.read(path).training {
                    raws.append((c.id, try NIfTI.read(c.images[0]).replacingNonFiniteVoxels(with: nanAs), try c.label.map { try NIfTI.read($0) }, nil))
                }
            }
            guard raws.count >= (reg.pairs == .random ? 2 : 1) else {
                throw MorphoTrainError.dataset(source: "data", message: "\(reg.pairs.rawValue) pairs need at least \(reg.pairs == .random ? 2 : 1) subjects, got \(raws.count)")
            }
            // Random pairs compare subjects voxel by voxel: all go onto the first one's grid
            // (pre-aligned to the first one first, when asked).
            let reference = raws[0].image
            for i in raws.indices.dropFirst() {
                (raws[i].image, raws[i].labels) = try prealigned(raws[i].image, raws[i].labels, raws[i].id, onto: reference, raws[0].id)
            }
            var prepared: [RegistrationImage] = []
            for r in raws {
                prepared.append(try loader.prepare(
                    r.id, image: r.image, labels: r.labels, onto: reg.pairs == .random ? reference : nil))
            }
            // A manifest's split column decides (as for segmentation); otherwise a seeded fraction.
            let held: Set<Int> = raws.contains(where: { $0.split != nil })
                ? Set(raws.indices.filter { raws[$0].split == "validation" })
                : heldOut(count: prepared.count, config: run)
            guard held.count < prepared.count else {
                throw MorphoTrainError.dataset(source: "data.manifest", message: "no training subjects left after the validation split")
            }
            let training = prepared.indices.filter { !held.contains($0) }.map { prepared[$0] }
            let validationImages = prepared.indices.filter { held.contains($0) }.map { prepared[$0] }
            var dataset = RegistrationDataset(
                mode: reg.pairs, images: training, pairs: [], validation: [], classes: loader.classes, shape: [], dims: dims)
            dataset.pad(including: validationImages)
            let validationPadded = dataset.padded(validationImages)
            dataset.validation = dataset.validationPairs(from: validationPadded, config: config)
            finish(&dataset)
            return dataset
        case .atlas, .listed:
            var all: [(PreparedPair, String?)] = []
            if reg.pairs == .atlas {
                let atlas = try NIfTI.read(reg.atlas!)
                let atlasLabels = try reg.atlasLabels.map { try NIfTI.read($0) }
                guard case .manifest(let path) = run.data.source else {
                    throw MorphoTrainError.config(file: run.name, key: "data.manifest", message: "atlas pairs need a manifest of subjects")
                }
                for c in try CaseList.manifest(path, modalities: run.data.modalities, requireLabels: false) {
                    var subject = try NIfTI.read(c.images[0])
                    var labels = try c.label.map { try NIfTI.read($0) }
                    // The atlas as this pair sees it (re-placed onto the subject when it moves).
                    var pairAtlas = atlas, pairAtlasLabels = atlasLabels
                    let atlasID = (reg.atlas! as NSString).lastPathComponent
                    if reg.atlasIsFixed {
                        (subject, labels) = try prealigned(subject, labels, c.id, onto: atlas, atlasID)
                    } else {
                        (pairAtlas, pairAtlasLabels) = try prealigned(atlas, atlasLabels, atlasID, onto: subject, c.id)
                    }
                    let files = reg.atlasIsFixed
                        ? RegistrationPairFiles(fixed: reg.atlas!, moving: c.images[0], fixedLabels: reg.atlasLabels, movingLabels: c.label)
                        : RegistrationPairFiles(fixed: c.images[0], moving: reg.atlas!, fixedLabels: c.label, movingLabels: reg.atlasLabels)
                    let pair = reg.atlasIsFixed
                        ? try RegistrationPair(fixed: atlas, moving: subject, fixedLabels: atlasLabels, movingLabels: labels, files: files)
                        : try RegistrationPair(fixed: subject, moving: pairAtlas, fixedLabels: labels, movingLabels: pairAtlasLabels, files: files)
                    all.append((try loader.prepare(pair, id: c.id), c.split))
                }
            } else {
                guard case .manifest(let path) = run.data.source else {
                    throw MorphoTrainError.config(file: run.name, key: "data.manifest", message: "listed pairs need a manifest (columns fixed, moving)")
                }
                for (i, row) in try PairList.read(path).enumerated() {
                    var pair = try StagedRegistration.Inputs.load(row.files)
                    (pair.moving, pair.movingLabels) = try prealigned(
                        pair.moving, pair.movingLabels, "pair\(i) moving", onto: pair.fixed, "pair\(i) fixed")
                    let prepared = try RegistrationPair(
                        fixed: pair.fixed, moving: pair.moving, fixedLabels: pair.fixedLabels, movingLabels: pair.movingLabels, files: row.files)
                    all.append((try loader.prepare(prepared, id: "pair\(i)"), row.split))
                }
            }
            let held: Set<Int> = all.contains(where: { $0.1 != nil })
                ? Set(all.indices.filter { all[$0].1 == "validation" })
                : heldOut(count: all.count, config: run)
            var dataset = RegistrationDataset(
                mode: reg.pairs, images: [], pairs: all.indices.filter { !held.contains($0) }.map { all[$0].0 },
                validation: all.indices.filter { held.contains($0) }.map { all[$0].0 }, classes: loader.classes,
                shape: [], dims: dims)
            guard !dataset.pairs.isEmpty else {
                throw MorphoTrainError.dataset(source: "data.manifest", message: "no training pairs left after the validation split")
            }
            dataset.pad()
            finish(&dataset)
            return dataset
        }
    }

    /// Indices held out for validation: `data.validation.fraction` of them, chosen with
    /// `data.seed` (at least one left for training).
    static func heldOut(count: Int, config: RunConfig) -> Set<Int> {
        let fraction = config.data.validation.fraction
        guard fraction > 0, count >= 2 else { return [] }
        var order = Array(0..<count)
        var rng = SeedStream.generator(seed: config.data.seed, 0x53504C54)
        order.shuffle(using: &rng)
        let n = min(count - 1, max(1, Int((fraction * Double(count)).rounded())))
        return Set(order.suffix(n))
    }

    /// Pads every image to the largest shape present (among them and `extra`, images padded
    /// later) — centred, images with their minimum, labels with 0 — and records it.
    mutating func pad(including extra: [RegistrationImage] = []) {
        let all = images + extra + pairs.flatMap { [$0.fixed, $0.moving] } + validation.flatMap { [$0.fixed, $0.moving] }
        shape = all.reduce([1, 1, 1]) { acc, x in zip(acc, x.image.shape).map { max($0, $1) } }
        images = padded(images)
        pairs = pairs.map { PreparedPair(fixed: padded([$0.fixed])[0], moving: padded([$0.moving])[0]) }
        validation = validation.map { PreparedPair(fixed: padded([$0.fixed])[0], moving: padded([$0.moving])[0]) }
    }

    func padded(_ list: [RegistrationImage]) -> [RegistrationImage] {
        list.map { x in
            guard x.image.shape != shape else { return x }
            let before = zip(shape, x.image.shape).map { ($0 - $1) / 2 }
            let after = (0..<3).map { shape[$0] - x.image.shape[$0] - before[$0] }
            var out = x
            out.image = x.image.padded(before: before, after: after, fill: x.image.channelMinima)
            out.labels = x.labels?.padded(before: before, after: after, fill: [0])
            return out
        }
    }

    /// The fixed validation pairs of the drawn modes.
    func validationPairs(from held: [RegistrationImage], config: RegistrationRunConfig) -> [PreparedPair] {
        let source = held.isEmpty ? images : held
        var rng = SeedStream.generator(seed: config.run.data.seed, 0x56414C50)
        return (0..<config.registration.validationPairs).map { k in
            switch mode {
            case .random where source.count >= 2:
                return PreparedPair(fixed: source[k % source.count], moving: source[(k + 1) % source.count])
            default:
                return synthesize(source[k % source.count], field: config.registration.synthetic, rng: &rng)
            }
        }
    }

    /// `image` deformed twice by independent random fields.
    func synthesize(_ x: RegistrationImage, field: SmoothRandomField, rng: inout RandomGenerator) -> PreparedPair {
        let pair = SyntheticPair(
            image: x.tensor(x.image, dims: dims), labels: x.labels.map { x.tensor($0, dims: dims) }, field: field, using: &rng)
        func array(_ t: Tensor) -> VoxelArray { VoxelArray(data: t.scalars, channels: 1, shape: x.image.shape, spacing: x.image.spacing) }
        return PreparedPair(
            fixed: RegistrationImage(id: x.id + "-a", image: array(pair.fixed), labels: pair.fixedLabels.map(array)),
            moving: RegistrationImage(id: x.id + "-b", image: array(pair.moving), labels: pair.movingLabels.map(array)))
    }

    /// Reads, checks and prepares images with the run's preprocessing.
    struct Loader {
        let config: RegistrationRunConfig
        let preprocessor: Preprocessor
        /// Largest label + 1 seen so far (0 without labels).
        var classes = 0

        init(config: RegistrationRunConfig) {
            self.config = config
            let run = config.run
            preprocessor = Preprocessor(
                normalization: run.data.normalization, targetSpacing: run.data.spacing, dims: run.model.dims, sliceAxis: .z,
                multiple: config.registration.network.sizeMultiple, minimumSize: [1, 1, 1])
        }

        /// One image (optionally first resampled onto `reference`'s grid through the affines).
        mutating func prepare(_ id: String, image: Volume, labels: Volume?, onto reference: Volume?) throws -> RegistrationImage {
            var image = image, labels = labels
            try RegistrationPair.checkImage(image, path: id)
            if let labels { try RegistrationPair.checkLabels(labels, path: id + " labels", image: image, imagePath: id) }
            if let reference, !image.sameGrid(as: reference) {
                let (resampled, inside) = WorldResampling.resample(image, onto: reference, interpolation: .linear)
                guard inside > 0 else { throw MorphoTrainError.noOverlap(fixed: "the first subject", moving: id) }
                image = resampled
                labels = labels.map { WorldResampling.resample($0, onto: reference, interpolation: .nearest).volume }
            }
            guard config.run.model.dims == 3 || image.is2D else {
                throw MorphoTrainError.invalidOption(key: "model.network.dims", reason: "2D registration needs 2D images, \(id) is 3D")
            }
            let prepared = preprocessor.prepareImage(VoxelArray(image)).array
            let preparedLabels = labels.map { preprocessor.prepareLabels(VoxelArray($0)) }
            if let l = preparedLabels {
                let top = Int(l.data.max() ?? 0)
                guard l.data.allSatisfy({ $0 >= 0 && $0 == $0.rounded() }) else {
                    throw MorphoTrainError.badLabel(path: id, value: l.data.first { $0 < 0 || $0 != $0.rounded() }!, classes: top + 1)
                }
                classes = max(classes, top + 1)
            }
            return RegistrationImage(id: id, image: prepared, labels: preparedLabels)
        }

        /// Both sides of a pair already on the fixed grid.
        mutating func prepare(_ pair: RegistrationPair, id: String) throws -> PreparedPair {
            PreparedPair(
                fixed: try prepare(id + "-fixed", image: pair.fixed, labels: pair.fixedLabels, onto: nil),
                moving: try prepare(id + "-moving", image: pair.moving, labels: pair.movingLabels, onto: nil))
        }
    }
}

/// The pair list of `listed` mode: a CSV (comma or tab separated) with a header naming the
/// columns `fixed`, `moving` and optionally `fixed_labels`, `moving_labels`, `split`
/// (`train`/`validation`); paths relative to the file's folder; `#` lines and blank lines skipped.
public enum PairList {
    public struct Row: Sendable, Equatable {
        public var files: RegistrationPairFiles
        public var split: String?
    }

    /// - Throws: `MorphoTrainError.fileNotFound` / `.dataset` naming the file and the problem.
    public static func read(_ path: String) throws -> [Row] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw MorphoTrainError.fileNotFound(path: path, role: "pair list")
        }
        let folder = (path as NSString).deletingLastPathComponent
        var lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !lines.isEmpty else { throw MorphoTrainError.dataset(source: path, message: "the pair list is empty") }
        let separator: Character = lines[0].contains("\t") ? "\t" : ","
        func fields(_ s: String) -> [String] {
            s.split(separator: separator, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let header = fields(lines.removeFirst())
        guard let f = header.firstIndex(of: "fixed"), let m = header.firstIndex(of: "moving") else {
            throw MorphoTrainError.dataset(source: path, message: "needs columns fixed and moving (columns: \(header.joined(separator: ", ")))")
        }
        let fl = header.firstIndex(of: "fixed_labels"), ml = header.firstIndex(of: "moving_labels"), sp = header.firstIndex(of: "split")
        func resolve(_ p: String) -> String { p.hasPrefix("/") || folder.isEmpty ? p : "\(folder)/\(p)" }
        return try lines.enumerated().map { number, line in
            let v = fields(line)
            guard v.count == header.count else {
                throw MorphoTrainError.dataset(source: path, message: "row \(number + 2) has \(v.count) fields, the header \(header.count)")
            }
            func optional(_ i: Int?) -> String? { i.flatMap { v[$0].isEmpty ? nil : resolve(v[$0]) } }
            return Row(
                files: RegistrationPairFiles(fixed: resolve(v[f]), moving: resolve(v[m]), fixedLabels: optional(fl), movingLabels: optional(ml)),
                split: sp.map { v[$0] })
        }
    }
}
