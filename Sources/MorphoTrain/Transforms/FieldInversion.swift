import MorphoIO

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
        public var iterations: Int
    }

    /// Iterates `v ← −u(y + v)` from `v = 0` until the largest inverse-consistency error is
    /// below `tolerance` (mm) or after `maxIterations`. Converges where the mapping does not fold
    /// (the iteration contracts when `|∇u| < 1`). Near the border, `u` is zero outside its grid
    /// (ITK's rule), so a field that moves points out of the grid is inverted only where they land.
    public static func invert(_ field: ITKDisplacementField, maxIterations: Int = 100, tolerance: Double = 1e-3) -> Result {
        let grid = field.volume
        let count = grid.spatialCount
        let d = field.dimension
        let fixed = TransformChain.gridPoints(grid)
        var v = [Double](repeating: 0, count: 3 * count)
        var points = [Double](repeating: 0, count: 3 * count)
        var iterations = 0
        var error = (mean: Double.infinity, max: Double.infinity)
        while true {
            // points = y + v, then y + v + u(y + v); the residual r = points − y.
            for i in 0..<3 * count { points[i] = fixed[i] + v[i] }
            points.withUnsafeMutableBufferPointer { FieldSampling.displace($0.baseAddress!, count: count, by: field) }
            var sum = 0.0, largest = 0.0
            for p in 0..<count {
                var squared = 0.0
                for c in 0..<d {
                    let r = points[c * count + p] - fixed[c * count + p]
                    squared += r * r
                }
                let norm = squared.squareRoot()
                sum += norm
                largest = max(largest, norm)
            }
            error = (sum / Double(max(count, 1)), largest)
            if largest <= tolerance || iterations == maxIterations { break }
            // v ← v − r = −u(y + v)
            for i in 0..<d * count { v[i] -= points[i] - fixed[i] }
            iterations += 1
        }
        var inverse = ITKDisplacementField.zero(on: grid)
        for i in 0..<d * count { inverse.volume.data[i] = Float(v[i]) }
        return Result(inverse: inverse, meanError: error.mean, maxError: error.max, iterations: iterations)
    }
}
