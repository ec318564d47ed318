import MorphoIO
import MorphoKernels

/// The inverse of a displacement field, by fixed-point iteration.
public enum FieldInversion {
    /// An inverse field and how well it inverts.
    public struct Result: Sendable {
        /// `v` on the same grid as `u` (ITK convention, LPS mm), such that
        /// `y + v(y) + u(y + v(y)) ≈ y`: following `v` then `u` returns to the start.
        public var inverse: ITKDisplacementField
        /// The inverse-consistency error `|v(y) + u(y + v(y))|` over the grid's voxels, mm.
        public var meanError: Double
        public var maxError: Double
        /// Updates of `v` made.
        public var iterations: Int
    }

    /// Iterates `v ← −u(y + v)` from `v = 0` until the largest inverse-consistency error is at
    /// most `tolerance` (mm), or the mean error improves by less than `stall` (relative) in one
    /// iteration, or after `maxIterations`. The iteration contracts where the mapping does not
    /// fold (`|∇u| < 1`); at folds there is no inverse and the largest error stays large while
    /// the mean settles, which is what the stall test catches. `u` is zero outside its grid
    /// (ITK's rule), so near the border the inverse is exact only where points stay inside.
    public static func invert(
        _ field: ITKDisplacementField, maxIterations: Int = 100, tolerance: Double = 1e-3, stall: Double = 0.01
    ) -> Result {
        let grid = field.volume
        let count = grid.spatialCount
        let d = field.dimension
        let fixed = TransformChain.gridPoints(grid)
        var v = [Double](repeating: 0, count: 3 * count)
        var points = [Double](repeating: 0, count: 3 * count)
        var norms = [Double](repeating: 0, count: count)
        var iterations = 0
        var error = (mean: Double.infinity, max: Double.infinity)
        fixed.withUnsafeBufferPointer { fixedBuffer in
            v.withUnsafeMutableBufferPointer { vBuffer in
                points.withUnsafeMutableBufferPointer { pointBuffer in
                    norms.withUnsafeMutableBufferPointer { normBuffer in
                        let y = fixedBuffer.baseAddress!, vv = vBuffer.baseAddress!
                        let p = pointBuffer.baseAddress!, r = normBuffer.baseAddress!
                        while true {
                            // p = y + v + u(y + v); the residual p − y is the inverse-consistency error.
                            Parallel.forRanges(3 * count) { range in
                                for i in range { p[i] = y[i] + vv[i] }
                            }
                            FieldSampling.displace(p, count: count, by: field)
                            Parallel.forRanges(count) { range in
                                for i in range {
                                    var squared = 0.0
                                    for c in 0..<d {
                                        let e = p[c * count + i] - y[c * count + i]
                                        squared += e * e
                                    }
                                    r[i] = squared.squareRoot()
                                }
                            }
                            var sum = 0.0, largest = 0.0
                            for i in 0..<count {
                                sum += r[i]
                                largest = max(largest, r[i])
                            }
                            let mean = sum / Double(max(count, 1))
                            let stalled = error.mean.isFinite && error.mean - mean < stall * error.mean
                            error = (mean, largest)
                            if largest <= tolerance || stalled || iterations == maxIterations { break }
                            // v ← v − (p − y) = −u(y + v)
                            Parallel.forRanges(d * count) { range in
                                for i in range { vv[i] -= p[i] - y[i] }
                            }
                            iterations += 1
                        }
                    }
                }
            }
        }
        var inverse = ITKDisplacementField.zero(on: grid)
        for i in 0..<d * count { inverse.volume.data[i] = Float(v[i]) }
        return Result(inverse: inverse, meanError: error.mean, maxError: error.max, iterations: iterations)
    }
}
