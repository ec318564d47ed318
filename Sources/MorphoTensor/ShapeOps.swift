import MorphoKernels

/// Concatenation, slicing and zero padding along one axis. Each is a block copy: for an axis
/// `a`, a tensor is `outer × extent × inner` with `outer = Π shape[..<a]`, `inner = Π shape[a+1...]`.
/// The copies run on all threads (`copyRuns`).

/// Copies `rows` runs of `count` floats, `srcStride` apart in `src` and `dstStride` apart in
/// `dst` (`src` nil: writes zeros), split over threads by element so that a few long runs (a
/// batch of two) spread as well as many short ones.
func copyRuns(rows: Int, count: Int, from src: UnsafePointer<Float>?, srcStride: Int, to dst: UnsafeMutablePointer<Float>, dstStride: Int) {
    guard rows > 0 && count > 0 else { return }
    Parallel.forRanges(rows * count, grain: 1 << 16) { r in
        var i = r.lowerBound
        while i < r.upperBound {
            let row = i / count, column = i % count
            let n = Swift.min(count - column, r.upperBound - i)
            let d = dst + row * dstStride + column
            if let src { d.update(from: src + row * srcStride + column, count: n) } else { d.update(repeating: 0, count: n) }
            i += n
        }
    }
}

extension Tensor {
    func outerInner(_ axis: Int) -> (Int, Int) {
        (shape[..<axis].reduce(1, *), shape[(axis + 1)...].reduce(1, *))
    }

    /// Joins tensors along `axis` (channels: axis 1). Shapes must agree elsewhere.
    public static func concat(_ parts: [Tensor], axis: Int = 1) -> Tensor {
        precondition(!parts.isEmpty, "concat of nothing")
        let first = parts[0]
        let ax = axis < 0 ? axis + first.rank : axis
        for p in parts {
            precondition(p.rank == first.rank && p.shape.enumerated().allSatisfy { $0.offset == ax || $0.element == first.shape[$0.offset] },
                         "concat of \(p.shape) with \(first.shape) along axis \(ax)")
        }
        var shape = first.shape
        shape[ax] = parts.reduce(0) { $0 + $1.shape[ax] }
        let (outer, inner) = first.outerInner(ax)
        let total = shape[ax] * inner
        let out = Tensor(shape: shape) { dst in
            var offset = 0
            for p in parts {
                let chunk = p.shape[ax] * inner
                copyRuns(rows: outer, count: chunk, from: p.storage.pointer, srcStride: chunk, to: dst + offset, dstStride: total)
                offset += chunk
            }
        }
        let extents = parts.map { $0.shape[ax] }
        return record(out, inputs: parts) { g in
            var start = 0
            return extents.map { e in
                defer { start += e }
                return g.slice(axis: ax, start ..< start + e)
            }
        }
    }

    /// The elements with index in `range` along `axis`.
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let ax = axis < 0 ? axis + rank : axis
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[ax], "slice \(range) out of \(shape) on axis \(ax)")
        var newShape = shape
        newShape[ax] = range.count
        let (outer, inner) = outerInner(ax)
        let src = storage.pointer
        let out = Tensor(shape: newShape) { dst in
            let chunk = range.count * inner
            copyRuns(rows: outer, count: chunk, from: src + range.lowerBound * inner, srcStride: shape[ax] * inner, to: dst, dstStride: chunk)
        }
        return Tensor.record(out, inputs: [self]) { [shape] g in
            [g.padded(axis: ax, before: range.lowerBound, after: shape[ax] - range.upperBound)]
        }
    }

    /// Zero padding of `before`/`after` elements along `axis` (negative values crop).
    public func padded(axis: Int, before: Int, after: Int) -> Tensor {
        let ax = axis < 0 ? axis + rank : axis
        if before == 0 && after == 0 { return self }
        if before < 0 || after < 0 {
            let lo = max(0, -before), hi = shape[ax] - max(0, -after)
            return slice(axis: ax, lo ..< hi).padded(axis: ax, before: max(0, before), after: max(0, after))
        }
        var newShape = shape
        newShape[ax] += before + after
        let (outer, inner) = outerInner(ax)
        let src = storage.pointer
        let out = Tensor(shape: newShape) { dst in
            let inChunk = shape[ax] * inner, outChunk = newShape[ax] * inner
            copyRuns(rows: outer, count: before * inner, from: nil, srcStride: 0, to: dst, dstStride: outChunk)
            copyRuns(rows: outer, count: inChunk, from: src, srcStride: inChunk, to: dst + before * inner, dstStride: outChunk)
            copyRuns(rows: outer, count: after * inner, from: nil, srcStride: 0, to: dst + before * inner + inChunk, dstStride: outChunk)
        }
        let n = shape[ax]
        return Tensor.record(out, inputs: [self]) { g in [g.slice(axis: ax, before ..< before + n)] }
    }

    /// Pads (positive) or crops (negative) every spatial axis of `[N, C, spatial...]` so that it
    /// has the extents `target`, centred; used to match skip connections of odd sizes.
    public func centred(toSpatial target: [Int]) -> Tensor {
        var t = self
        for (i, want) in target.enumerated() {
            let ax = i + 2
            let diff = want - t.shape[ax]
            if diff != 0 { t = t.padded(axis: ax, before: diff / 2, after: diff - diff / 2) }
        }
        return t
    }
}
