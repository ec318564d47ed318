import Foundation
import MorphoIO

/// What a dataset is made of, the facts a plan is derived from (nnU-Net's "dataset fingerprint"):
/// every training case's voxel spacing and size, how much of it the non-zero region covers, the
/// intensities of each channel inside the labelled foreground, and how many voxels each class has.
public struct DatasetFingerprint: Equatable, Sendable {
    /// Per case, voxel size in mm (x, y, z).
    public var spacings: [[Double]]
    /// Per case, size in voxels (x, y, z).
    public var shapes: [[Int]]
    /// Per case, the volume of the bounding box of the non-zero voxels (any channel) relative to
    /// the whole image: below 3/4 the images are cropped (skull-stripped, say) and normalisation
    /// statistics should come from non-zero voxels.
    public var nonzeroBoxFractions: [Double]
    /// Per channel, statistics of the voxels with a label > 0.
    public var foregroundIntensities: [IntensityStatistics]
    /// Per class (0 = background), voxels over all cases.
    public var classVoxels: [Int]
    public var channels: [String]
    public var labels: [String]

    /// Statistics of one channel's foreground intensities.
    public struct IntensityStatistics: Equatable, Sendable {
        public var mean: Double, std: Double, median: Double
        public var percentile00_5: Double, percentile99_5: Double
        public var min: Double, max: Double
        /// Voxels the statistics were taken from (at most `samplesPerCase` per case).
        public var samples: Int

        init(_ values: [Float]) {
            let sorted = values.sorted()
            samples = sorted.count
            guard !sorted.isEmpty else {
                (mean, std, median, percentile00_5, percentile99_5, min, max) = (0, 0, 0, 0, 0, 0, 0)
                return
            }
            var sum = 0.0, sq = 0.0
            for v in sorted { sum += Double(v); sq += Double(v) * Double(v) }
            mean = sum / Double(sorted.count)
            std = Swift.max(0, sq / Double(sorted.count) - mean * mean).squareRoot()
            median = Double(NormalizationConfig.percentile(sorted, 50))
            percentile00_5 = Double(NormalizationConfig.percentile(sorted, 0.5))
            percentile99_5 = Double(NormalizationConfig.percentile(sorted, 99.5))
            min = Double(sorted.first!)
            max = Double(sorted.last!)
        }
    }

    /// Foreground voxels kept per case and channel (evenly strided, so the result is
    /// deterministic), as nnU-Net samples 10 000 per case.
    public static let samplesPerCase = 10_000

    /// Reads every training case of a dataset folder once.
    ///
    /// - Throws: `DatasetCheck.headers`' errors, `MorphoIOError`, `MorphoTrainError` for
    ///   mismatched grids or undeclared label values (naming the file).
    public static func extract(_ folder: DatasetFolder) throws -> DatasetFingerprint {
        try DatasetCheck.headers(folder)
        var fp = DatasetFingerprint(
            spacings: [], shapes: [], nonzeroBoxFractions: [], foregroundIntensities: [],
            classVoxels: Array(repeating: 0, count: folder.labels.count), channels: folder.channels, labels: folder.labels)
        var samples = [[Float]](repeating: [], count: folder.channels.count)
        for c in folder.training {
            let raw = try SegmentationDataset.read(c, classes: folder.labels.count, declaredLabels: folder.labels)
            let v = raw.reference
            fp.spacings.append([v.spacing.x, v.spacing.y, v.spacing.z])
            fp.shapes.append([v.width, v.height, v.depth])
            fp.nonzeroBoxFractions.append(nonzeroBoxFraction(raw.image))
            let labels = raw.labels.data
            var foreground: [Int] = []
            for (i, l) in labels.enumerated() {
                fp.classVoxels[Int(l)] += 1
                if l > 0 { foreground.append(i) }
            }
            let stride = Swift.max(1, foreground.count / samplesPerCase)
            let n = raw.image.spatialCount
            for ch in 0..<raw.image.channels {
                for k in Swift.stride(from: 0, to: foreground.count, by: stride) {
                    samples[ch].append(raw.image.data[ch * n + foreground[k]])
                }
            }
        }
        fp.foregroundIntensities = samples.map(IntensityStatistics.init)
        return fp
    }

    /// Volume of the bounding box of voxels ≠ 0 in any channel over the image volume (1 for an
    /// image without zeros, 0 for an all-zero one).
    static func nonzeroBoxFraction(_ image: VoxelArray) -> Double {
        let s = image.shape, n = image.spatialCount
        var lo = s, hi = [-1, -1, -1]
        for i in 0..<n where (0..<image.channels).contains(where: { image.data[$0 * n + i] != 0 }) {
            let p = [i / (s[1] * s[2]), (i / s[2]) % s[1], i % s[2]]
            for a in 0..<3 { lo[a] = Swift.min(lo[a], p[a]); hi[a] = Swift.max(hi[a], p[a]) }
        }
        guard hi[0] >= 0 else { return 0 }
        return Double((0..<3).map { hi[$0] - lo[$0] + 1 }.reduce(1, *)) / Double(n)
    }

    /// `{"channels", "labels", "spacings", "shapes", "nonzero_box_fractions",
    /// "foreground_intensities": [{"mean", "std", "median", "percentile_00_5", "percentile_99_5",
    /// "min", "max", "samples"}], "class_voxels"}`; spacings mm (x, y, z), shapes voxels (x, y, z).
    public var json: String {
        func n(_ v: Double) -> String { EpochRecord.number(v) }
        func list<T>(_ v: [T], _ f: (T) -> String) -> String { "[" + v.map(f).joined(separator: ", ") + "]" }
        let stats = foregroundIntensities.map {
            "{\"mean\": \(n($0.mean)), \"std\": \(n($0.std)), \"median\": \(n($0.median)), "
                + "\"percentile_00_5\": \(n($0.percentile00_5)), \"percentile_99_5\": \(n($0.percentile99_5)), "
                + "\"min\": \(n($0.min)), \"max\": \(n($0.max)), \"samples\": \($0.samples)}"
        }
        return "{\n  \"channels\": \(list(channels, FolderEvaluation.jsonString)),\n  \"labels\": \(list(labels, FolderEvaluation.jsonString)),\n"
            + "  \"spacings\": \(list(spacings) { list($0, n) }),\n  \"shapes\": \(list(shapes) { list($0) { String($0) } }),\n"
            + "  \"nonzero_box_fractions\": \(list(nonzeroBoxFractions, n)),\n"
            + "  \"foreground_intensities\": [\(stats.joined(separator: ", "))],\n"
            + "  \"class_voxels\": \(list(classVoxels) { String($0) })\n}\n"
    }
}
