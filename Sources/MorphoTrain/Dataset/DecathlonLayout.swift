import Foundation

/// The Medical Segmentation Decathlon's layout (Antonelli et al., Nat. Commun. 2022):
///
///     dataset.json   {"modality": {"0": "FLAIR", "1": "T1w", …}, "labels": {"0": "background", "1": "edema", …},
///                     "numTraining": 484, "training": [{"image": "./imagesTr/BRATS_001.nii.gz",
///                     "label": "./labelsTr/BRATS_001.nii.gz"}, …], "test": ["./imagesTs/BRATS_485.nii.gz", …]}
///
/// A multi-modal case is one 4D file whose fourth axis holds the modalities in `modality` order
/// (MorphoSeg reads it as channels). Paths are relative to the folder.
enum DecathlonLayout {
    static func read(_ root: String, json raw: [String: Any]) throws -> DatasetFolder {
        let json = DatasetJSON(raw, path: DatasetFolder.descriptionPath(root))
        let channels = try json.indexedNames("modality")
        var byValue: [Int: String] = [:]
        for (key, value) in try json.object("labels") {
            guard let v = Int(key), v >= 0 else { throw json.error("labels", "keys must be label values, got \"\(key)\"") }
            guard let name = value as? String else { throw json.error("labels.\(key)", "expected a name") }
            byValue[v] = name
        }
        let labels = try json.classNames(byValue, key: "labels")
        func resolve(_ p: String) -> String {
            if p.hasPrefix("/") { return p }
            return "\(root)/\(p.hasPrefix("./") ? String(p.dropFirst(2)) : p)"
        }
        func existing(_ p: String, role: String) throws -> String {
            let path = resolve(p)
            guard FileManager.default.fileExists(atPath: path) else { throw MorphoTrainError.fileNotFound(path: path, role: role) }
            return path
        }
        guard let entries = raw["training"] as? [Any] else { throw json.error("training", "expected a list of {image, label}") }
        let training = try entries.enumerated().map { i, entry -> CaseFiles in
            guard let e = entry as? [String: Any], let image = e["image"] as? String, let label = e["label"] as? String else {
                throw json.error("training[\(i)]", "expected {\"image\": PATH, \"label\": PATH}")
            }
            let path = try existing(image, role: "image")
            return CaseFiles(id: CaseList.stem(path), images: [path], label: try existing(label, role: "label"))
        }
        guard !training.isEmpty else { throw json.error("training", "is empty") }
        if let n = try json.int("numTraining"), n != training.count {
            throw json.error("numTraining", "says \(n), the training list has \(training.count) cases")
        }
        let testEntries = raw["test"] as? [Any] ?? []
        let test = try testEntries.enumerated().map { i, entry -> CaseFiles in
            // The Decathlon lists test images as strings; some conversions use {"image": PATH}.
            guard let image = (entry as? String) ?? ((entry as? [String: Any])?["image"] as? String) else {
                throw json.error("test[\(i)]", "expected an image path")
            }
            let path = try existing(image, role: "test image")
            return CaseFiles(id: CaseList.stem(path), images: [path], label: nil)
        }
        for (cases, key) in [(training, "training"), (test, "test")] {
            var seen = Set<String>()
            for c in cases where !seen.insert(c.id).inserted {
                throw json.error(key, "case \(c.id) is listed twice")
            }
        }
        return DatasetFolder(
            root: root, layout: .decathlon, name: raw["name"] as? String, channels: channels, labels: labels,
            training: training.sorted { $0.id < $1.id }, test: test.sorted { $0.id < $1.id }, channelsInOneFile: true)
    }
}
