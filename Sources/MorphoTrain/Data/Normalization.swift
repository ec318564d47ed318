import Foundation

extension NormalizationConfig {
    /// Normalises every channel of `array` in place.
    ///
    /// - `zscore`: `(x − mean) / std` (std 0 → only the mean is removed);
    /// - `percentile`: clip to the `lower`/`upper` percentiles (linear interpolation between order
    ///   statistics, numpy's default) and map that range to [0, 1] (a constant channel gives 0);
    /// - `ct`: clip to the fixed `clip` range, then `(x − mean) / std` with the fixed values
    ///   (dataset-wide foreground statistics, nnU-Net's CT scheme; `nonzero` does not apply);
    /// - `none`: unchanged.
    ///
    /// With `nonzero`, the statistics come from voxels ≠ 0 only and zero voxels stay at the value
    /// 0 maps to. Statistics are accumulated in `Double`.
    public func apply(to array: inout VoxelArray) {
        guard kind != .none else { return }
        let n = array.spatialCount
        for c in 0..<array.channels {
            let range = (c * n)..<((c + 1) * n)
            var values = Array(array.data[range])
            if nonzero {
                let kept = values.filter { $0 != 0 }
                if !kept.isEmpty { values = kept }
            }
            let (scale, shift, clip) = transform(values)
            for i in range {
                var v = array.data[i]
                if let clip { v = min(max(v, clip.lowerBound), clip.upperBound) }
                array.data[i] = (v - shift) * scale
            }
        }
    }

    /// `x ↦ (clip(x) − shift) · scale` for one channel's statistics sample.
    func transform(_ values: [Float]) -> (scale: Float, shift: Float, clip: ClosedRange<Float>?) {
        switch kind {
        case .none:
            return (1, 0, nil)
        case .ct:
            guard let ct else { return (1, 0, nil) }
            return (Float(1 / ct.std), Float(ct.mean), Float(ct.clip.lowerBound)...Float(ct.clip.upperBound))
        case .zscore:
            var sum = 0.0, sq = 0.0
            for v in values { sum += Double(v); sq += Double(v) * Double(v) }
            let mean = sum / Double(max(values.count, 1))
            let variance = max(0, sq / Double(max(values.count, 1)) - mean * mean)
            let std = variance.squareRoot()
            return (std > 1e-12 ? Float(1 / std) : 1, Float(mean), nil)
        case .percentile:
            let sorted = values.sorted()
            let lo = Self.percentile(sorted, lower), hi = Self.percentile(sorted, upper)
            let width = hi - lo
            return (width > 0 ? 1 / width : 0, lo, lo...max(lo, hi))
        }
    }

    /// The `p`-th percentile (0–100) of sorted values, numpy's linear interpolation.
    static func percentile(_ sorted: [Float], _ p: Double) -> Float {
        guard !sorted.isEmpty else { return 0 }
        let rank = p / 100 * Double(sorted.count - 1)
        let i = Int(rank.rounded(.down)), j = min(sorted.count - 1, i + 1)
        let f = Float(rank - Double(i))
        return sorted[i] + f * (sorted[j] - sorted[i])
    }
}
