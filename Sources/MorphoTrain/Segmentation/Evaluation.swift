import Foundation
import MorphoIO

/// `morphoseg evaluate`: a predicted label map against a reference, per label.
public struct Evaluation: Sendable {
    public var prediction: String
    public var reference: String
    /// Voxel size in mm (x, y, z) used for the distances.
    public var spacing: [Double]
    public var labels: [LabelMetrics]

    /// Reads both label maps and compares every label > 0 found in either (or `labels`).
    ///
    /// - Throws: `MorphoIOError` for unreadable files; `MorphoTrainError.gridMismatch` when the
    ///   grids (size or affine) differ; `.badLabel` for non-integer or negative values.
    public static func files(prediction: String, reference: String, labels: [Int]? = nil) throws -> Evaluation {
        let p = try NIfTI.read(prediction)
        let r = try NIfTI.read(reference)
        try SegmentationDataset.checkSameGrid(p, prediction, r, reference)
        for (v, path) in [(p, prediction), (r, reference)] {
            guard v.channels == 1 else {
                throw MorphoTrainError.mismatch(path: path, message: "a label map needs one channel, this file has \(v.channels)")
            }
            try SegmentationDataset.checkLabels(v.data, classes: Int(Int32.max), path: path)
        }
        let found = Set(p.data.map { Int($0) }).union(r.data.map { Int($0) }).filter { $0 > 0 }.sorted()
        let spacing = AxisOrder.dhw(fromXYZ: r.spacing)
        let metrics = SegmentationMetrics.evaluate(
            prediction: p.data, reference: r.data, shape: r.spatialShape, spacing: spacing, labels: labels ?? found)
        return Evaluation(prediction: prediction, reference: reference, spacing: [r.spacing.x, r.spacing.y, r.spacing.z], labels: metrics)
    }

    /// Mean Dice over the labels.
    public var meanDice: Double { SegmentationMetrics.meanDice(labels) }

    /// `{"prediction", "reference", "spacing", "labels": [{"label", "dice", "hd95", "msd",
    /// "predicted_voxels", "reference_voxels"}], "mean_dice"}`; infinite distances are `null`.
    public var json: String {
        func n(_ v: Double) -> String { EpochRecord.number(v) }
        func s(_ v: String) -> String {
            let data = try? JSONSerialization.data(withJSONObject: [v], options: [.withoutEscapingSlashes])
            return data.flatMap { String(data: $0, encoding: .utf8) }.map { String($0.dropFirst().dropLast()) } ?? "\"\""
        }
        let rows = labels.map {
            "{\"label\": \($0.label), \"dice\": \(n($0.dice)), \"hd95\": \(n($0.hd95)), \"msd\": \(n($0.meanSurfaceDistance)), "
                + "\"predicted_voxels\": \($0.predictedVoxels), \"reference_voxels\": \($0.referenceVoxels)}"
        }
        return "{\"prediction\": \(s(prediction)), \"reference\": \(s(reference)), \"spacing\": [\(spacing.map(n).joined(separator: ", "))], "
            + "\"labels\": [\(rows.joined(separator: ", "))], \"mean_dice\": \(n(meanDice))}"
    }

    /// A small table, one row per label, distances in mm.
    public var table: String {
        var out = "label   dice     hd95 (mm)  msd (mm)   voxels pred/ref\n"
        for m in labels {
            out += String(format: "%5d   %.4f   %9.3f  %9.3f   %d/%d\n", m.label, m.dice, m.hd95, m.meanSurfaceDistance,
                          m.predictedVoxels, m.referenceVoxels)
        }
        out += String(format: "mean    %.4f\n", meanDice)
        return out
    }
}
