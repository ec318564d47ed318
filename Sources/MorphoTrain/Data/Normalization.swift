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
            let (scale, shift, clip) = transform(reordering: &values)
            for i in range {
                var v = array.data[i]
                if let clip { v = min(max(v, clip.lowerBound), clip.upperBound) }
                array.data[i] = (v - shift) * scale
            }
        }
    }

    /// `x ↦ (clip(x) − shift) · scale` for one channel's statistics sample (which `percentile`
    /// reorders).
    func transform(reordering values: inout [Float]) -> (scale: Float, shift: Float, clip: ClosedRange<Float>?) {
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
            let lo = Self.percentile(selecting: &values, lower), hi = Self.percentile(selecting: &values, upper)
            let width = hi - lo
            return (width > 0 ? 1 / width : 0, lo, lo...max(lo, hi))
        }
    }

    /// The `p`-th percentile (0–100) of `values`, numpy's linear interpolation between the order
    /// statistics at ranks ⌊r⌋ and ⌊r⌋ + 1, r = p/100·(n − 1); `values` is reordered. By
    /// selection, expected O(n), where sorting a 160×192×224 volume took 2 s (twice per image in
    /// `morphoseg register`, more than the network).
    static func percentile(selecting values: inout [Float], _ p: Double) -> Float {
        guard !values.isEmpty else { return 0 }
        let (i, j, f) = ranks(p, count: values.count)
        return values.withUnsafeMutableBufferPointer { v in
            let a = select(i, in: v)
            // Everything after rank i is ≥ v[i] now: the next order statistic is their least.
            let b = j == i ? a : v[(i + 1)...].min()!
            return a + f * (b - a)
        }
    }

    /// numpy's linear interpolation: the `p`-th percentile (0–100) of `n` values lies a fraction
    /// `f` of the way from the order statistic at rank `i` to the one at rank `j` (= i + 1, or i
    /// at the top), with i + f = p/100·(n − 1).
    static func ranks(_ p: Double, count n: Int) -> (i: Int, j: Int, f: Float) {
        let rank = p / 100 * Double(n - 1)
        let i = Int(rank.rounded(.down))
        return (i, min(n - 1, i + 1), Float(rank - Double(i)))
    }

    /// Reorders `v` so that `v[k]` holds the value a sort would put there, with nothing greater
    /// before it and nothing less after it, and returns it: Hoare's selection (median-of-three
    /// pivots, Hoare partitions, which split runs of equal values evenly) with an insertion sort
    /// for short ranges.
    static func select(_ k: Int, in v: UnsafeMutableBufferPointer<Float>) -> Float {
        var (lo, hi) = (0, v.count - 1)
        while hi - lo >= 16 {
            let mid = lo + (hi - lo) / 2
            if v[mid] < v[lo] { v.swapAt(mid, lo) }
            if v[hi] < v[lo] { v.swapAt(hi, lo) }
            if v[hi] < v[mid] { v.swapAt(hi, mid) }
            let pivot = v[mid]
            var (i, j) = (lo, hi)
            while i <= j {
                while v[i] < pivot { i += 1 }
                while v[j] > pivot { j -= 1 }
                if i <= j {
                    v.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            // Now v[lo...j] ≤ pivot ≤ v[i...hi] and anything between equals the pivot.
            if k <= j { hi = j } else if k >= i { lo = i } else { return v[k] }
        }
        if hi > lo {
            for a in (lo + 1)...hi {
                let x = v[a]
                var b = a
                while b > lo && v[b - 1] > x {
                    v[b] = v[b - 1]
                    b -= 1
                }
                v[b] = x
            }
        }
        return v[k]
    }

    /// The `p`-th percentile (0–100) of sorted values, numpy's linear interpolation.
    static func percentile(_ sorted: [Float], _ p: Double) -> Float {
        guard !sorted.isEmpty else { return 0 }
        let (i, j, f) = ranks(p, count: sorted.count)
        return sorted[i] + f * (sorted[j] - sorted[i])
    }
}
