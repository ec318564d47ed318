import Foundation
import MorphoIO

/// Checks every file of a dataset folder before anything is trained, each problem one line naming
/// the file: all files exist and have the declared channels, each case's channel images and its
/// label map share one voxel grid (size and voxel-to-world affine, from the headers), and label
/// maps hold only declared label values.
public enum DatasetCheck {
    /// A file's voxel grid as its header states it.
    struct Grid {
        /// `[D, H, W]`.
        var shape: [Int]
        var channels: Int
        var affine: Affine
    }

    static func grid(_ path: String) throws -> Grid {
        let h = try NIfTI.readHeader(path)
        let dim = h.dim + Array(repeating: 1, count: max(0, 3 - h.dim.count))
        return Grid(shape: [dim[2], dim[1], dim[0]], channels: dim.dropFirst(3).reduce(1, *), affine: h.bestAffine)
    }

    /// Header checks of every case (training and test); reads no voxels.
    ///
    /// - Throws: `MorphoTrainError.gridMismatch` naming both files, `.dataset` naming a file with
    ///   the wrong number of channels, `MorphoIOError` for an unreadable header.
    public static func headers(_ dataset: DatasetFolder) throws {
        let expected = dataset.channelsInOneFile ? dataset.channels.count : 1
        for c in dataset.training + dataset.test {
            let grids = try c.images.map { try grid($0) }
            for (g, path) in zip(grids, c.images) where g.channels != expected {
                throw MorphoTrainError.dataset(
                    source: path,
                    message: "has \(g.channels) channel(s), expected \(expected) (dataset.json declares \(dataset.channels.joined(separator: ", ")))")
            }
            var files = Array(zip(grids, c.images))
            if let label = c.label {
                let g = try grid(label)
                guard g.channels == 1 else {
                    throw MorphoTrainError.dataset(source: label, message: "a label map needs one channel, this file has \(g.channels)")
                }
                files.append((g, label))
            }
            let (first, firstPath) = files[0]
            for (g, path) in files.dropFirst() {
                try SegmentationDataset.checkSameGrid((first.shape, first.affine), firstPath, (g.shape, g.affine), path)
            }
        }
    }

    /// Label values must be declared in `dataset.json` (integers `0..<labels.count`).
    ///
    /// - Throws: `MorphoTrainError.dataset` naming the file, the first undeclared value and the
    ///   declared labels; `.nonFiniteVoxels`.
    public static func labelValues(_ values: [Float], path: String, labels: [String]) throws {
        try checkFiniteVoxels(values, path: path)
        if let bad = values.first(where: { $0 != $0.rounded() || $0 < 0 || $0 >= Float(labels.count) }) {
            let declared = labels.enumerated().map { "\($0.offset) \($0.element)" }.joined(separator: ", ")
            throw MorphoTrainError.dataset(
                source: path, message: "label value \(bad.formatted()) is not declared in dataset.json (labels: \(declared))")
        }
    }

    /// Everything: `headers`, then the values of every label map (reads each label file once).
    public static func run(_ dataset: DatasetFolder) throws {
        try headers(dataset)
        for c in dataset.training {
            guard let label = c.label else { continue }
            try labelValues(try NIfTI.read(label).data, path: label, labels: dataset.labels)
        }
    }
}

extension Float {
    /// `3` rather than `3.0` for whole values.
    fileprivate func formatted() -> String { self == rounded() && abs(self) < 1e9 ? String(Int(self)) : "\(self)" }
}
