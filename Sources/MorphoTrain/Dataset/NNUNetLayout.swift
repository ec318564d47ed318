import Foundation

/// nnU-Net v2's dataset layout (`nnunetv2/dataset_conversion`, "dataset_format.md"):
///
///     dataset.json   {"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1},
///                     "numTraining": 131, "file_ending": ".nii.gz"}
///     imagesTr/<case>_0000.nii.gz …   one file per channel, the 4-digit channel index last
///     labelsTr/<case>.nii.gz          the label map
///     imagesTs/<case>_0000.nii.gz …   optional, unlabelled
///
/// Region-based labels (a list of values for one name) are not supported; `file_ending` must be
/// `.nii.gz` or `.nii`.
enum NNUNetLayout {
    static func read(_ root: String, json raw: [String: Any]) throws -> DatasetFolder {
        let json = DatasetJSON(raw, path: DatasetFolder.descriptionPath(root))
        let channels = try json.indexedNames("channel_names")
        var byValue: [Int: String] = [:]
        for (name, value) in try json.object("labels") {
            guard let n = value as? NSNumber, !(value is [Any]), n.doubleValue == n.doubleValue.rounded(), n.intValue >= 0 else {
                throw json.error("labels.\(name)", "expected a label value (region-based labels are not supported)")
            }
            if let other = byValue[n.intValue] { throw json.error("labels.\(name)", "value \(n.intValue) is also \(other)") }
            byValue[n.intValue] = name
        }
        let labels = try json.classNames(byValue, key: "labels")
        guard let ending = json.json["file_ending"] as? String else { throw json.error("file_ending", "missing") }
        guard ending == ".nii.gz" || ending == ".nii" else {
            throw json.error("file_ending", "MorphoSeg reads NIfTI (.nii.gz or .nii), not \(ending)")
        }

        let labelFiles = try files(in: "\(root)/labelsTr", ending: ending, role: "label folder")
        let training = try labelFiles.map { file -> CaseFiles in
            let id = String(file.dropLast(ending.count))
            return CaseFiles(id: id, images: try imagePaths(root, "imagesTr", id, channels.count, ending), label: "\(root)/labelsTr/\(file)")
        }
        try checkNoOrphans(root, "imagesTr", ending: ending, cases: Set(training.map(\.id)), channels: channels.count)
        if let n = try json.int("numTraining"), n != training.count {
            throw json.error("numTraining", "says \(n), labelsTr holds \(training.count) label maps")
        }
        guard !training.isEmpty else {
            throw MorphoTrainError.dataset(source: "\(root)/labelsTr", message: "no \(ending) label maps")
        }

        var test: [CaseFiles] = []
        if FileManager.default.fileExists(atPath: "\(root)/imagesTs") {
            let first = "_0000\(ending)"
            let ids = try files(in: "\(root)/imagesTs", ending: ending, role: "test image folder")
                .filter { $0.hasSuffix(first) }.map { String($0.dropLast(first.count)) }
            test = try ids.map { CaseFiles(id: $0, images: try imagePaths(root, "imagesTs", $0, channels.count, ending), label: nil) }
            try checkNoOrphans(root, "imagesTs", ending: ending, cases: Set(ids), channels: channels.count)
        }
        return DatasetFolder(
            root: root, layout: .nnUNet, name: raw["name"] as? String, channels: channels, labels: labels,
            training: training, test: test, channelsInOneFile: false)
    }

    /// `<root>/<folder>/<case>_<XXXX><ending>` for each channel, each checked to exist.
    static func imagePaths(_ root: String, _ folder: String, _ id: String, _ channels: Int, _ ending: String) throws -> [String] {
        try (0..<channels).map { c in
            let path = "\(root)/\(folder)/\(id)_\(String(format: "%04d", c))\(ending)"
            guard FileManager.default.fileExists(atPath: path) else {
                throw MorphoTrainError.fileNotFound(path: path, role: "image (channel \(c))")
            }
            return path
        }
    }

    /// Sorted names ending in `ending` in `folder`, hidden files (`._x` from macOS archives) skipped.
    static func files(in folder: String, ending: String, role: String) throws -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw MorphoTrainError.fileNotFound(path: folder, role: role)
        }
        return names.filter { $0.hasSuffix(ending) && !$0.hasPrefix(".") }.sorted()
    }

    /// Every image in `folder` belongs to a known case and names a channel the description has.
    static func checkNoOrphans(_ root: String, _ folder: String, ending: String, cases: Set<String>, channels: Int) throws {
        for file in try files(in: "\(root)/\(folder)", ending: ending, role: "image folder") {
            let stem = file.dropLast(ending.count)
            let channel = stem.suffix(5)
            let id = String(stem.dropLast(5))
            guard channel.first == "_", let c = Int(channel.dropFirst()), channel.count == 5 else {
                throw MorphoTrainError.dataset(source: "\(root)/\(folder)/\(file)", message: "expected <case>_<XXXX>\(ending) (4-digit channel index)")
            }
            guard cases.contains(id) else {
                throw MorphoTrainError.dataset(
                    source: "\(root)/\(folder)/\(file)",
                    message: folder == "imagesTr" ? "no label map labelsTr/\(id)\(ending) for this image" : "case \(id) has no channel 0000")
            }
            guard c < channels else {
                throw MorphoTrainError.dataset(
                    source: "\(root)/\(folder)/\(file)", message: "channel \(c), but dataset.json declares \(channels) channel(s)")
            }
        }
    }
}
