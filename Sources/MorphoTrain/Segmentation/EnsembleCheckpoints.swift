import Foundation
import MorphoIO

/// The checkpoints `segment --model` names: a file is itself; a run folder stands for the best
/// checkpoint of each of its folds (`fold_k/best.safetensors`, k ascending: the fold ensemble
/// nnU-Net predicts with by default), or for its own `best.safetensors` when it was trained
/// without folds.
public enum EnsembleCheckpoints {
    /// Expands run folders among `arguments` into their checkpoints, in order; files are kept.
    ///
    /// - Throws: `MorphoTrainError.checkpoint` naming a folder with neither `fold_k/` folders nor a
    ///   `best.safetensors`, or a `fold_k/` folder without `best.safetensors` (a fold not trained,
    ///   or still training: its `last.safetensors` is not the fold's model).
    public static func expand(_ arguments: [String]) throws -> [String] {
        try arguments.flatMap { path -> [String] in
            guard FileChecks.isFolder(path) else { return [path] }
            let folds = try foldFolders(in: path)
            if folds.isEmpty {
                let best = path + "/best.safetensors"
                guard FileManager.default.fileExists(atPath: best) else {
                    throw MorphoTrainError.checkpoint(
                        path: path, message: "is a folder with neither fold_k/ folders nor a best.safetensors; give a checkpoint file or a run folder")
                }
                return [best]
            }
            return try folds.map { fold in
                let best = "\(path)/\(fold.name)/best.safetensors"
                guard FileManager.default.fileExists(atPath: best) else {
                    throw MorphoTrainError.checkpoint(
                        path: "\(path)/\(fold.name)",
                        message: "has no best.safetensors (fold \(fold.index) is not trained yet); train it, or pass the folds to use with --model FILE")
                }
                return best
            }
        }
    }

    /// The `fold_k` sub-folders of `folder` (k a non-negative integer), by k.
    static func foldFolders(in folder: String) throws -> [(name: String, index: Int)] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return entries.compactMap { name -> (String, Int)? in
            guard name.hasPrefix("fold_"), let k = Int(name.dropFirst(5)), k >= 0, String(k) == name.dropFirst(5),
                FileChecks.isFolder(folder + "/" + name)
            else { return nil }
            return (name, k)
        }.sorted { $0.1 < $1.1 }
    }
}
