import Foundation

/// The two dataset layouts researchers download and share, besides MorphoSeg's own manifests.
public enum DatasetLayout: String, Sendable {
    /// nnU-Net v2: `dataset.json` with `channel_names`, `labels` (name → value), `file_ending`,
    /// `numTraining`; `imagesTr/<case>_<XXXX><ending>` (one file per channel),
    /// `labelsTr/<case><ending>`, optionally `imagesTs/`.
    case nnUNet = "nnU-Net v2"
    /// Medical Segmentation Decathlon: `dataset.json` with `training: [{image, label}]`,
    /// `test: [...]`, `modality` and `labels` (value → name); one (4D when multi-modal) image file
    /// per case whose time axis holds the modalities.
    case decathlon = "Medical Segmentation Decathlon"
}

/// A dataset folder as users have it (nnU-Net v2 or Decathlon layout), turned into MorphoSeg's
/// case list: the channel names, the declared classes and the files of every training and test
/// case. Reading it looks at `dataset.json` and the folder listing only; `DatasetCheck` opens the
/// files.
public struct DatasetFolder: Sendable {
    public var root: String
    public var layout: DatasetLayout
    /// `dataset.json`'s `name`, when it has one.
    public var name: String?
    /// Input channels in network order (nnU-Net `channel_names`, Decathlon `modality`).
    public var channels: [String]
    /// Class names by label value: `labels[k]` names value `k`; values are `0..<labels.count`.
    public var labels: [String]
    /// Cases with a label map, sorted by id.
    public var training: [CaseFiles]
    /// Cases without labels (`imagesTs`, Decathlon `test`), sorted by id.
    public var test: [CaseFiles]
    /// True when one file holds all channels of a case (Decathlon's 4D images).
    public var channelsInOneFile: Bool

    /// The description file of a dataset folder.
    public static func descriptionPath(_ root: String) -> String { "\(root)/dataset.json" }

    /// Reads a dataset folder, recognising its layout from `dataset.json` (`channel_names`:
    /// nnU-Net v2; `training` and `modality`: Decathlon).
    ///
    /// - Throws: `MorphoTrainError.fileNotFound` (the folder's `dataset.json`, a listed file),
    ///   `.dataset` naming `dataset.json` and the key for a malformed description, or the file for
    ///   a case that does not fit the layout.
    public static func read(_ root: String) throws -> DatasetFolder {
        let json = try description(root)
        if json["channel_names"] != nil { return try NNUNetLayout.read(root, json: json) }
        if json["training"] != nil { return try DecathlonLayout.read(root, json: json) }
        throw MorphoTrainError.dataset(
            source: descriptionPath(root),
            message: "neither an nnU-Net v2 description (no channel_names) nor a Decathlon one (no training list)")
    }

    /// The channel names alone (what a config needs to size the network), without listing files.
    public static func channelNames(_ root: String) throws -> [String] {
        let json = try description(root)
        let key = json["channel_names"] != nil ? "channel_names" : "modality"
        return try DatasetJSON(json, path: descriptionPath(root)).indexedNames(key)
    }

    static func description(_ root: String) throws -> [String: Any] {
        let path = descriptionPath(root)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MorphoTrainError.fileNotFound(path: path, role: "dataset description")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let json = object as? [String: Any] else {
            throw MorphoTrainError.dataset(source: path, message: "not a JSON object")
        }
        return json
    }
}

/// Typed access to `dataset.json`, every error naming the file and the key.
struct DatasetJSON {
    let json: [String: Any]
    let path: String

    init(_ json: [String: Any], path: String) {
        self.json = json
        self.path = path
    }

    func error(_ key: String, _ message: String) -> MorphoTrainError {
        .dataset(source: path, message: "\(key): \(message)")
    }

    func object(_ key: String) throws -> [String: Any] {
        guard let value = json[key] else { throw error(key, "missing") }
        guard let o = value as? [String: Any] else { throw error(key, "expected an object") }
        return o
    }

    /// `{"0": "T1", "1": "T2"}` as `["T1", "T2"]`: keys must be 0..<n.
    func indexedNames(_ key: String) throws -> [String] {
        let o = try object(key)
        var names = [String?](repeating: nil, count: o.count)
        for (k, v) in o {
            guard let i = Int(k), i >= 0, i < o.count else {
                throw error(key, "keys must be the indices 0..<\(o.count), got \"\(k)\"")
            }
            guard let name = v as? String else { throw error("\(key).\(k)", "expected a name") }
            names[i] = name
        }
        guard !names.isEmpty else { throw error(key, "is empty") }
        return names.map { $0! }
    }

    /// `count` when present, checked to be a non-negative integer.
    func int(_ key: String) throws -> Int? {
        guard let value = json[key] else { return nil }
        guard let n = value as? NSNumber, n.doubleValue == n.doubleValue.rounded(), n.intValue >= 0 else {
            throw error(key, "expected a non-negative integer")
        }
        return n.intValue
    }

    /// Class names from a value → name list, checked to be exactly 0..<K with K ≥ 2.
    func classNames(_ byValue: [Int: String], key: String) throws -> [String] {
        let k = byValue.count
        guard k >= 2 else { throw error(key, "needs background (0) and at least one class") }
        guard let missing = (0..<k).first(where: { byValue[$0] == nil }) else { return (0..<k).map { byValue[$0]! } }
        throw error(key, "label values must be 0..<\(k) without gaps; \(missing) is missing")
    }
}

extension DatasetFolder {
    /// The run's channels and classes must be the dataset's.
    ///
    /// - Throws: `MorphoTrainError.config` naming `data.modalities` or `model.unet.classes`.
    public func check(against config: RunConfig) throws {
        guard config.data.modalities == channels else {
            throw MorphoTrainError.config(
                file: config.name, key: "data.modalities",
                message: "\(config.data.modalities.joined(separator: ", ")) differ from \(Self.descriptionPath(root))'s channels \(channels.joined(separator: ", "))")
        }
        guard config.model.unet.classes == labels.count else {
            throw MorphoTrainError.config(
                file: config.name, key: "model.unet.classes",
                message: "is \(config.model.unet.classes), \(Self.descriptionPath(root)) declares \(labels.count) labels (\(labels.joined(separator: ", ")))")
        }
    }
}
