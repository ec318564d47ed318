import Foundation

/// The cases of a folder given to `segment --input`, the way `nnUNetv2_predict -i` reads one:
/// when every NIfTI file is named `<case>_<XXXX>.nii(.gz)` (an nnU-Net `imagesTs` folder), the
/// files of a case are its channels 0000, 0001, … in order and its prediction is named
/// `<case>.nii(.gz)`, the name of its reference in `labelsTs`; otherwise every file is one case
/// and keeps its name: a single-channel image, or for a multi-channel model a 4D file holding
/// every channel (a Decathlon `imagesTs` folder).
public enum InputFolder {
    /// One case: its channel files in modality order and the file name of its outputs.
    public struct Case: Equatable, Sendable {
        public var inputs: [String]
        public var outputName: String
    }

    /// The cases of `folder` for a model with `channels` input channels, sorted by name.
    ///
    /// - Throws: `MorphoTrainError.fileNotFound` (no folder), `.dataset` naming the folder when
    ///   it holds no NIfTI file, or naming the first file of a case whose channel files are not
    ///   exactly 0..<channels. (A plain file with the wrong number of channels fails when it is
    ///   segmented, naming the file, and the folder's other cases are still segmented.)
    public static func cases(in folder: String, channels: Int) throws -> [Case] {
        let files = try Segmenter.niftiFiles(in: folder)
        let named = files.map { path -> (path: String, id: String, channel: Int, ending: String)? in
            let name = (path as NSString).lastPathComponent
            let ending = name.hasSuffix(".nii.gz") ? ".nii.gz" : ".nii"
            let stem = name.dropLast(ending.count)
            let suffix = stem.suffix(5)
            guard stem.count > 5, suffix.first == "_", suffix.dropFirst().allSatisfy(\.isASCII),
                suffix.dropFirst().allSatisfy(\.isNumber), let c = Int(suffix.dropFirst())
            else { return nil }
            return (path, String(stem.dropLast(5)), c, ending)
        }
        guard named.allSatisfy({ $0 != nil }) else {
            return files.map { Case(inputs: [$0], outputName: ($0 as NSString).lastPathComponent) }
        }
        var byCase: [String: [(path: String, channel: Int, ending: String)]] = [:]
        for n in named.map({ $0! }) { byCase[n.id, default: []].append((n.path, n.channel, n.ending)) }
        return try byCase.keys.sorted().map { id in
            let parts = byCase[id]!.sorted { $0.channel < $1.channel }
            guard parts.map(\.channel) == Array(0..<channels) else {
                throw MorphoTrainError.dataset(
                    source: parts[0].path,
                    message: "case \(id) has channels \(parts.map { String(format: "%04d", $0.channel) }.joined(separator: ", ")); the model takes \(channels) (0000…\(String(format: "%04d", channels - 1)))")
            }
            return Case(inputs: parts.map(\.path), outputName: id + parts[0].ending)
        }
    }
}
