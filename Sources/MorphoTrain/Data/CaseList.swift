import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The files of one subject: one image per modality (in the config's modality order) and its
/// label map.
public struct CaseFiles: Equatable, Sendable {
    public var id: String
    public var images: [String]
    public var label: String?
    /// `train` or `validation` when the manifest says so.
    public var split: String?
    /// The manifest's `subject` column: cases of one subject stay on one side of a fold.
    public var subject: String?

    public init(id: String, images: [String], label: String?, split: String? = nil, subject: String? = nil) {
        self.id = id
        self.images = images
        self.label = label
        self.split = split
        self.subject = subject
    }
}

/// Finding the subjects a config names: a CSV manifest or globs.
public enum CaseList {
    /// Reads a manifest: a CSV (comma or tab separated) whose first row names the columns — one per
    /// modality, `label`, and optionally `split` (`train`/`validation`), `id` and `subject`. Paths are relative
    /// to the manifest's folder; blank lines and lines starting with `#` are skipped.
    ///
    /// - Throws: `MorphoTrainError.fileNotFound` (the manifest or any file it lists, with its role),
    ///   `.dataset` for a missing column, a short row or an empty manifest.
    public static func manifest(_ path: String, modalities: [String], requireLabels: Bool = true) throws -> [CaseFiles] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw MorphoTrainError.fileNotFound(path: path, role: "manifest")
        }
        let folder = (path as NSString).deletingLastPathComponent
        var lines = text.split(whereSeparator: \.isNewline).enumerated()
            .map { (number: $0.offset + 1, text: $0.element.trimmingCharacters(in: .whitespaces)) }
            .filter { !$0.text.isEmpty && !$0.text.hasPrefix("#") }
        guard !lines.isEmpty else { throw MorphoTrainError.dataset(source: path, message: "the manifest is empty") }
        let separator: Character = lines[0].text.contains("\t") ? "\t" : ","
        func fields(_ s: String) -> [String] {
            s.split(separator: separator, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let header = fields(lines.removeFirst().text)
        func column(_ name: String, required: Bool) throws -> Int? {
            if let i = header.firstIndex(of: name) { return i }
            if required {
                throw MorphoTrainError.dataset(
                    source: path, message: "no column \"\(name)\" (columns: \(header.joined(separator: ", ")))")
            }
            return nil
        }
        let imageColumns = try modalities.map { try column($0, required: true)! }
        let labelColumn = try column("label", required: requireLabels)
        let splitColumn = try column("split", required: false)
        let idColumn = try column("id", required: false)
        let subjectColumn = try column("subject", required: false)
        guard !lines.isEmpty else { throw MorphoTrainError.dataset(source: path, message: "the manifest lists no subjects") }

        func resolve(_ p: String) -> String { p.hasPrefix("/") || folder.isEmpty ? p : "\(folder)/\(p)" }
        return try lines.map { line in
            let f = fields(line.text)
            guard f.count == header.count else {
                throw MorphoTrainError.dataset(
                    source: "\(path):\(line.number)", message: "expected \(header.count) fields, got \(f.count)")
            }
            let images = imageColumns.map { resolve(f[$0]) }
            let label = labelColumn.map { resolve(f[$0]) }
            var split = splitColumn.map { f[$0].lowercased() }
            if let s = split, s.isEmpty { split = nil }
            if let s = split, s != "train", s != "validation" {
                throw MorphoTrainError.dataset(source: "\(path):\(line.number)", message: "split must be train or validation, got \"\(s)\"")
            }
            let id = idColumn.map { f[$0] } ?? Self.stem(images[0])
            let subject = subjectColumn.map { f[$0] }.flatMap { $0.isEmpty ? nil : $0 }
            let c = CaseFiles(id: id, images: images, label: label, split: split, subject: subject)
            try checkExists(c)
            return c
        }
    }

    /// Pairs files matched by one glob per modality and one label glob, by the text the wildcards
    /// matched (`data/*_t1.nii.gz` and `data/*_seg.nii.gz` pair `data/a_t1.nii.gz` with
    /// `data/a_seg.nii.gz`). Subjects missing any file are an error naming the key.
    public static func globs(images: [String], labels: String) throws -> [CaseFiles] {
        let labelFiles = try keyed(labels)
        let imageFiles = try images.map { try keyed($0) }
        var cases: [CaseFiles] = []
        for key in labelFiles.keys.sorted() {
            var paths: [String] = []
            for (i, files) in imageFiles.enumerated() {
                guard let p = files[key] else {
                    throw MorphoTrainError.dataset(source: images[i], message: "no image for label \(labelFiles[key]!)")
                }
                paths.append(p)
            }
            cases.append(CaseFiles(id: key, images: paths, label: labelFiles[key]))
        }
        for (i, files) in imageFiles.enumerated() {
            if let orphan = files.keys.sorted().first(where: { labelFiles[$0] == nil }) {
                throw MorphoTrainError.dataset(source: labels, message: "no label for image \(files[orphan]!) (glob \(images[i]))")
            }
        }
        return cases
    }

    /// Matches of `pattern`, keyed by the part the wildcards covered.
    static func keyed(_ pattern: String) throws -> [String: String] {
        let files = glob(pattern)
        guard !files.isEmpty else { throw MorphoTrainError.dataset(source: pattern, message: "the glob matches no files") }
        let wild = pattern.firstIndex { "*?[".contains($0) }
        let prefix = wild.map { pattern.distance(from: pattern.startIndex, to: $0) } ?? pattern.count
        let lastWild = pattern.lastIndex { "*?]".contains($0) }
        let suffix = lastWild.map { pattern.distance(from: $0, to: pattern.endIndex) - 1 } ?? 0
        var out: [String: String] = [:]
        for f in files {
            let key = f.count >= prefix + suffix ? String(f.dropFirst(prefix).dropLast(suffix)) : f
            out[key] = f
        }
        return out
    }

    /// Sorted paths matching a shell glob (no `~` or brace expansion).
    public static func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }

    static func checkExists(_ c: CaseFiles) throws {
        for p in c.images where !FileManager.default.fileExists(atPath: p) {
            throw MorphoTrainError.fileNotFound(path: p, role: "image")
        }
        if let l = c.label, !FileManager.default.fileExists(atPath: l) {
            throw MorphoTrainError.fileNotFound(path: l, role: "label")
        }
    }

    /// File name without folder and `.nii`/`.nii.gz`.
    static func stem(_ path: String) -> String {
        var name = (path as NSString).lastPathComponent
        for ext in [".nii.gz", ".nii", ".hdr", ".img"] where name.hasSuffix(ext) {
            name = String(name.dropLast(ext.count))
            break
        }
        return name
    }
}
