import Foundation

/// Affine transform files by extension: `.txt`/`.tfm` in ITK's text format
/// (`ITKTransformText`), `.mat` in ITK's binary format (`ITKTransformMatlab`).
public enum ITKTransformFile {
    /// The transform file types MorphoSeg reads, as error messages name them.
    public static let transformFileTypes = ".txt or .tfm (ITK text), .mat (ITK/ANTs binary), .nii or .nii.gz (displacement field)"

    /// True for the extensions above (case-insensitive).
    public static func isAffineFile(_ path: String) -> Bool {
        let lower = path.lowercased()
        return lower.hasSuffix(".mat") || lower.hasSuffix(".txt") || lower.hasSuffix(".tfm")
    }

    public static func read(_ path: String) throws -> ITKAffineTransform {
        guard FileChecks.exists(path) else { throw FileChecks.missing(path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MorphoIOError.badTransformFile(path: path, reason: "could not be read")
        }
        if path.lowercased().hasSuffix(".mat") { return try ITKTransformMatlab.parse([UInt8](data), path: path) }
        guard isAffineFile(path) else { throw MorphoIOError.unsupportedExtension(path: path, expected: transformFileTypes) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw MorphoIOError.badTransformFile(path: path, reason: "not UTF-8 text")
        }
        return try ITKTransformText.parse(text, path: path)
    }

    /// Writes `transform` in the format the extension names (atomically: a temporary file in the
    /// same folder, renamed over `path`).
    public static func write(_ transform: ITKAffineTransform, to path: String, scalar: ITKTransformName.Scalar = .double) throws {
        let data: Data
        if path.lowercased().hasSuffix(".mat") {
            data = Data(ITKTransformMatlab.bytes(of: transform, scalar: scalar))
        } else if isAffineFile(path) {
            data = Data(ITKTransformText.text(of: transform, scalar: scalar).utf8)
        } else {
            throw MorphoIOError.unsupportedExtension(path: path, expected: transformFileTypes)
        }
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw MorphoIOError.writeFailed(path: path, reason: error.localizedDescription)
        }
    }
}
