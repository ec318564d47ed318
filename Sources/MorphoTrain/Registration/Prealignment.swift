import Foundation
import MorphoIO

/// `registration.prealign`: the linear stages a registration run applies to its real subject
/// pairs, once, before training.
public enum PrealignKind: String, CaseIterable, Sendable {
    /// The images' own world placement (the default).
    case none
    /// A rigid stage (6 dof; 3 in 2D).
    case rigid
    /// Rigid then affine (12 dof; 6 in 2D): what `morphoseg register --model` runs by default.
    case affine

    /// The `register --transform` whose linear part this is (nil for `none`).
    public var transform: RegistrationTransform? {
        switch self {
        case .none: return nil
        case .rigid: return .rigid
        case .affine: return .affine
        }
    }

    /// The linear settings: `LinearRegistration.Settings()` — the defaults `morphoseg register`
    /// starts from (centres of mass, mutual information, 3-level pyramid) — with the stages of
    /// `transform`. One home: training pairs are aligned exactly as `register --model` aligns a
    /// pair before the network sees it.
    public var settings: LinearRegistration.Settings? {
        guard let transform else { return nil }
        var s = LinearRegistration.Settings()
        s.stages = transform.linearStages
        return s
    }
}

/// Pre-alignment of a registration run's subject pairs, the preprocessing VoxelMorph's authors
/// apply to real scans: each moving image registered to its fixed image by the linear stages
/// (`LinearRegistration` with `PrealignKind.settings`), then re-placed in world space by the
/// inverse map so that the data set's usual resampling onto the fixed grid reads it at `L(x)`
/// (one interpolation in all). Labels travel with their image.
///
/// Each map is computed once per run: it is kept on disk in `cacheFolder` (the run folder's
/// `prealign/`), one small JSON file per pair named by a hash of both images' contents (voxels,
/// grid, affine) and of the settings, written atomically, so a resumed run (or a second run on
/// the same data and settings) reads it instead of registering again. The resampled volumes stay
/// in memory with the rest of the data set.
///
/// Every pair logs one line: the images, the loss before → after, the rotation (degrees),
/// scales, shear and translation (mm) found, and the time (or `cached`).
struct Prealignment {
    let settings: LinearRegistration.Settings
    let cacheFolder: String?
    let log: (String) -> Void
    /// Maps computed by registering, and read from the cache.
    private(set) var computed = 0
    private(set) var reused = 0

    init(settings: LinearRegistration.Settings, cacheFolder: String?, log: @escaping (String) -> Void) {
        self.settings = settings
        self.cacheFolder = cacheFolder
        self.log = log
    }

    /// What a cache file holds: the map, and how it was found.
    struct Record: Codable, Equatable, Sendable {
        var fixed: String
        var moving: String
        var kind: LinearTransform.Kind
        var dimension: Int
        /// `c`, RAS mm.
        var center: [Double]
        var parameters: [Double]
        /// The similarity loss at the finest level before the first stage and after the last (−MI for `mi`).
        var lossBefore: Double
        var lossAfter: Double
        var seconds: Double

        var transform: LinearTransform {
            var t = LinearTransform(kind: kind, dimension: dimension, center: SIMD3(center[0], center[1], center[2]))
            t.parameters = parameters
            return t
        }
    }

    /// `moving` (and `labels`, on its grid) re-placed by `L⁻¹`, `L` the linear map taking
    /// `fixed`'s world points to `moving`'s; ids name the images in the log and errors.
    ///
    /// - Throws: what `RegistrationPair.checkImage` throws (before any work), a
    ///   `dimensionalityMismatch` for a 2D/3D mix, `MorphoTrainError.invalidOption` for bad
    ///   settings, `.output` when the cache file cannot be written.
    mutating func align(
        _ moving: Volume, labels: Volume?, id: String, onto fixed: Volume, fixedID: String
    ) throws -> (image: Volume, labels: Volume?, record: Record) {
        try RegistrationPair.checkImage(fixed, path: fixedID)
        try RegistrationPair.checkImage(moving, path: id)
        guard fixed.is2D == moving.is2D else { throw MorphoTrainError.dimensionalityMismatch(fixed: fixedID, moving: id) }
        let record = try linearMap(moving, id: id, onto: fixed, fixedID: fixedID)
        let inverse = record.transform.worldMap.inverse
        var image = moving, placed = labels
        image.affine = inverse * moving.affine
        if let labels { placed?.affine = inverse * labels.affine }
        return (image, placed, record)
    }

    /// The cached or freshly computed map of `moving` onto `fixed`, logged.
    mutating func linearMap(_ moving: Volume, id: String, onto fixed: Volume, fixedID: String) throws -> Record {
        let file = cacheFolder.map { "\($0)/\(key(moving, onto: fixed)).json" }
        if let file, let data = FileManager.default.contents(atPath: file),
           let record = try? Self.decoder.decode(Record.self, from: data),
           record.parameters.count == LinearTransform(kind: record.kind, dimension: record.dimension).parameterCount
        {
            reused += 1
            log(line(record, id: id, fixedID: fixedID, cached: true))
            return record
        }
        let start = Date()
        let result = try LinearRegistration(settings).register(fixed: fixed, moving: moving)
        let t = result.transform
        let record = Record(
            fixed: fixedID, moving: id, kind: t.kind, dimension: t.dimension, center: [t.center.x, t.center.y, t.center.z],
            parameters: t.parameters, lossBefore: result.stages.first?.outcome.lossBefore ?? .nan,
            lossAfter: result.stages.last?.outcome.lossAfter ?? .nan, seconds: Date().timeIntervalSince(start))
        computed += 1
        if let file, let folder = cacheFolder {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                try Self.encoder.encode(record).write(to: URL(fileURLWithPath: file), options: .atomic)
            } catch {
                throw MorphoTrainError.output(path: file, message: "cannot write the pre-alignment cache (\(error.localizedDescription))")
            }
        }
        log(line(record, id: id, fixedID: fixedID, cached: false))
        return record
    }

    /// Cache files: snake_case keys, sorted.
    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }

    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }

    /// The cache file's name: a hash of both images and of the settings.
    func key(_ moving: Volume, onto fixed: Volume) -> String {
        var hash = ContentHash()
        hash.add("morphoseg-prealign-1 \(settings)")
        hash.add(fixed)
        hash.add(moving)
        return hash.hex
    }

    func line(_ r: Record, id: String, fixedID: String, cached: Bool) -> String {
        let metric = settings.similarity.rawValue
        let time = cached ? String(format: "cached (%.2f s when computed)", r.seconds) : String(format: "%.2f s", r.seconds)
        return "prealign \(id) onto \(fixedID) (\(r.kind.rawValue), \(metric) loss "
            + String(format: "%.4f → %.4f", r.lossBefore, r.lossAfter) + ", \(time)): " + AffineDecomposition(r.transform).summary
    }
}
