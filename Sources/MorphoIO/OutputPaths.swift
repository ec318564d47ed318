import Foundation

/// The data-safety rule every command that writes files follows, checked before anything is read
/// or written: no output is one of the inputs, and no two outputs are the same file. Paths are
/// compared after resolving them (relative paths, `.` and `..`, symbolic links), so
/// `--output ./x.nii.gz` cannot overwrite `--input x.nii.gz`, nor a link to it.
public enum OutputPaths {
    /// `path` made absolute, standardised, with symbolic links resolved, including those of its
    /// folder when the file itself does not exist yet.
    public static func resolved(_ path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let folder = url.deletingLastPathComponent().resolvingSymlinksInPath()
        return folder.appendingPathComponent(url.lastPathComponent).resolvingSymlinksInPath().standardizedFileURL.path
    }

    /// Throws when an output resolves to an input or to another output.
    ///
    /// - Parameters:
    ///   - inputs: every file (or folder) the command reads.
    ///   - outputs: every file (or folder) it writes, with the option that names it (`--output`).
    /// - Throws: `MorphoIOError.outputIsInput`, `MorphoIOError.outputsCollide`.
    public static func checkDistinct(inputs: [String], outputs: [(option: String, path: String)]) throws {
        let readPaths = inputs.map { (path: $0, resolved: resolved($0)) }
        var written: [(option: String, resolved: String)] = []
        for output in outputs {
            let r = resolved(output.path)
            if let input = readPaths.first(where: { $0.resolved == r }) {
                throw MorphoIOError.outputIsInput(output: output.path, option: output.option, input: input.path)
            }
            if let other = written.first(where: { $0.resolved == r }) {
                throw MorphoIOError.outputsCollide(path: output.path, first: other.option, second: output.option)
            }
            written.append((output.option, r))
        }
    }
}
