import Foundation

/// K-fold cross-validation by subject (`data.folds: K`, `morphoseg train --fold k`), as nnU-Net
/// does it: the split is made once, saved as `splits.json` — nnU-Net's `splits_final.json`
/// shape, a list of K `{"train": [case ids], "val": [case ids]}` — and read back by every later
/// fold, so all K runs share one split even if the case list is read in another order.
///
/// The split: the distinct subjects (a manifest's `subject` column, else the case id) are
/// sorted, shuffled with `data.seed`, and subject number p goes to fold p mod K. Fold k
/// validates on the cases of its subjects and trains on all others, so every case is validated
/// on exactly once over the K folds and no subject is on both sides of any fold.
public enum CrossValidationSplits {
    /// One fold: training and validation case ids, each sorted.
    public struct Fold: Equatable, Sendable {
        public var train: [String]
        public var val: [String]
    }

    /// The K folds of `cases` (`id`, `subject`; a nil subject is the id), deterministic in `seed`.
    ///
    /// - Throws: `MorphoTrainError.dataset` when there are fewer subjects than folds or two cases
    ///   share an id.
    public static func make(cases: [(id: String, subject: String?)], folds: Int, seed: UInt64, source: String) throws -> [Fold] {
        precondition(folds >= 2, "folds must be at least 2")
        let ids = cases.map(\.id)
        if let twice = Dictionary(grouping: ids, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw MorphoTrainError.dataset(source: source, message: "case id \(twice) appears twice; folds need distinct case ids")
        }
        var subjects = Array(Set(cases.map { $0.subject ?? $0.id })).sorted()
        guard subjects.count >= folds else {
            throw MorphoTrainError.dataset(
                source: source, message: "data.folds: \(folds) needs at least \(folds) subjects, found \(subjects.count)")
        }
        var rng = SeedStream.generator(seed: seed, 0x464F_4C44)
        subjects.shuffle(using: &rng)
        var foldOf: [String: Int] = [:]
        for (p, s) in subjects.enumerated() { foldOf[s] = p % folds }
        return (0..<folds).map { k in
            let val = cases.filter { foldOf[$0.subject ?? $0.id] == k }.map(\.id).sorted()
            let train = cases.filter { foldOf[$0.subject ?? $0.id] != k }.map(\.id).sorted()
            return Fold(train: train, val: val)
        }
    }

    /// `splits.json` text of `folds` (nnU-Net's `splits_final.json` shape).
    public static func json(_ folds: [Fold]) -> String {
        let object = folds.map { ["train": $0.train, "val": $0.val] }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Reads a `splits.json`.
    ///
    /// - Throws: `MorphoTrainError.dataset` naming the file when it is not a list of
    ///   `{train, val}` string lists.
    public static func read(_ path: String) throws -> [Fold] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MorphoTrainError.fileNotFound(path: path, role: "splits")
        }
        guard let list = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
            throw MorphoTrainError.dataset(source: path, message: "expected a list of {\"train\": [...], \"val\": [...]}")
        }
        return try list.enumerated().map { i, entry in
            guard let train = entry["train"] as? [String], let val = entry["val"] as? [String] else {
                throw MorphoTrainError.dataset(source: path, message: "fold \(i) needs train and val lists of case ids")
            }
            return Fold(train: train, val: val)
        }
    }

    /// Where a run keeps its split when the config does not say (`data.splits`): the dataset
    /// folder for `data.dataset` (beside `plan.yaml`), else `base` (the parent of the folds'
    /// run folders).
    public static func defaultPath(_ config: RunConfig, base: String) -> String {
        if case .dataset(let root) = config.data.source { return "\(root)/splits.json" }
        return "\(base)/splits.json"
    }

    /// The indices into `raws` validated on in fold `fold`: from `config.data.splits` (default
    /// `defaultPath(config, base: output.dir)`), which is written first when absent.
    ///
    /// - Throws: `MorphoTrainError.dataset` naming `splits.json` when its folds are not
    ///   `data.folds` or its cases are not those of the dataset; `.output` when it cannot be
    ///   written.
    static func validationIndices(_ raws: [RawSubject], config: RunConfig, fold: Int) throws -> Set<Int> {
        guard let k = config.data.folds else { preconditionFailure("data.fold without data.folds passed the config check") }
        let path = config.data.splits ?? defaultPath(config, base: config.output.dir)
        let cases = raws.map { (id: $0.id, subject: $0.subject) }
        let folds: [Fold]
        if FileManager.default.fileExists(atPath: path) {
            folds = try read(path)
            guard folds.count == k else {
                throw MorphoTrainError.dataset(
                    source: path, message: "has \(folds.count) folds but data.folds is \(k); delete it to split again")
            }
            let ids = Set(cases.map(\.id))
            for (i, f) in folds.enumerated() where Set(f.train + f.val) != ids || f.train.count + f.val.count != ids.count {
                throw MorphoTrainError.dataset(
                    source: path, message: "fold \(i) does not list the dataset's \(ids.count) cases once each; delete it to split again")
            }
        } else {
            folds = try make(cases: cases, folds: k, seed: config.data.seed, source: path)
            let folder = (path as NSString).deletingLastPathComponent
            do {
                if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
                try json(folds).write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw MorphoTrainError.output(path: path, message: "cannot write the splits (\(error.localizedDescription))")
            }
        }
        let val = Set(folds[fold].val)
        return Set(raws.indices.filter { val.contains(raws[$0].id) })
    }
}

extension TaskConfig {
    /// The config of fold `fold` of `data.folds` (`train --fold`): `data.fold` set, `data.splits`
    /// pinned to the split's file and the run folder `<base>/fold_<k>` (base: `--output` or
    /// `output.dir`), all recorded in the resolved config and hence in the checkpoints.
    ///
    /// - Throws: `MorphoTrainError.config` (one line) when the config has no `data.folds` or
    ///   `fold` is not below it.
    public func selectingFold(_ fold: Int, base: String? = nil, file: String) throws -> (config: TaskConfig, output: String) {
        guard case .segmentation(var c) = self else {
            throw MorphoTrainError.config(file: file, key: "data.folds", message: "--fold applies to segmentation runs")
        }
        guard let k = c.data.folds else {
            throw MorphoTrainError.config(file: file, key: "data.folds", message: "--fold \(fold) needs data.folds: K in the config")
        }
        guard (0..<k).contains(fold) else {
            throw MorphoTrainError.config(file: file, key: "data.folds", message: "--fold must be in 0..<\(k), got \(fold)")
        }
        let base = base ?? c.output.dir
        c.data.fold = fold
        c.data.splits = c.data.splits ?? CrossValidationSplits.defaultPath(c, base: base)
        c.output.dir = "\(base)/fold_\(fold)"
        return (.segmentation(c), c.output.dir)
    }
}
