import MorphoKernels

extension Tensor {
    /// Σ of all elements as a 0-d tensor, accumulated in Double over both cores.
    public func sum() -> Tensor {
        let p = storage.pointer
        let n = count
        let chunks = max(1, min(64, n / 65536))
        var partial = [Double](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { part in
            let out = part.baseAddress!
            Parallel.forEach(chunks) { c in
                let lo = c * n / chunks, hi = (c + 1) * n / chunks
                var s = 0.0
                var i = lo
                // Float blocks of 16 summed exactly in Double keep the error at float64 level.
                while i + 16 <= hi {
                    var v = SIMD16<Float>()
                    for k in 0..<16 { v[k] = p[i + k] }
                    var d = 0.0
                    for k in 0..<16 { d += Double(v[k]) }
                    s += d
                    i += 16
                }
                while i < hi { s += Double(p[i]); i += 1 }
                out[c] = s
            }
        }
        let total = Float(partial.reduce(0, +))
        return Tensor.record(Tensor(scalar: total), inputs: [self]) { [shape] g in
            [Tensor(shape: shape, repeating: g.item)]
        }
    }

    /// Mean of all elements as a 0-d tensor.
    public func mean() -> Tensor { sum() * (1 / Float(max(count, 1))) }

    /// Σ over `axes` (negative axes count from the end); kept as size-1 axes when `keepDims`.
    public func sum(axes: [Int], keepDims: Bool = false) -> Tensor {
        let norm = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
        let kept = shape.enumerated().map { norm.contains($0.offset) ? 1 : $0.element }
        let s = sum(toShape: kept)
        return keepDims ? s : s.reshaped(shape.enumerated().filter { !norm.contains($0.offset) }.map(\.element))
    }

    /// Mean over `axes`.
    public func mean(axes: [Int], keepDims: Bool = false) -> Tensor {
        let norm = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
        let n = norm.reduce(1) { $0 * shape[$1] }
        return sum(axes: axes, keepDims: keepDims) * (1 / Float(max(n, 1)))
    }

    /// Largest element (not differentiable; for metrics and checks).
    public var maxValue: Float { withUnsafeBufferPointer { $0.max() ?? -.infinity } }
    public var minValue: Float { withUnsafeBufferPointer { $0.min() ?? .infinity } }
    /// True when every element is finite (no NaN or Inf).
    public var isFinite: Bool { withUnsafeBufferPointer { $0.allSatisfy { $0.isFinite } } }
}
