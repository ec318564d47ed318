import Foundation

/// Affine transform files by extension: `.txt`/`.tfm` in ITK's text format
/// (`ITKTransformText`), `.mat` in ITK's binary format (`ITKTransformMatlab`).
public enum ITKTransformFile {
    /// True for the extensions above (case-insensitive).
    public static func isAffineFile(_ path: String) -> Bool {
        let lower = path.lowercased()
        return lower.hasSuffix(".mat") || lower.hasSuffix(".txt") || lower.hasSuffix(".tfm")
    }

    public static func read(_ path: String) throws -> ITKAffineTransform {
        guard FileManager.default.fileExists(atPath: path) else { throw TransformFileError.fileNotFound(path: path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TransformFileError.malformed(path: path, reason: "could not be read")
        }
        if path.lowercased().hasSuffix(".mat") { return try ITKTransformMatlab.parse([UInt8](data), path: path) }
        guard isAffineFile(path) else { throw TransformFileError.unsupportedExtension(path: path) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TransformFileError.malformed(path: path, reason: "not UTF-8 text")
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
            throw TransformFileError.unsupportedExtension(path: path)
        }
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw TransformFileError.writeFailed(path: path, reason: error.localizedDescription)
        }
    }
}
