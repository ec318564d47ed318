import Foundation
import MorphoKernels

extension Tensor {
    /// Softmax over the channel axis of `[N, C, spatial...]` (numerically stable: the channel
    /// maximum is subtracted first). Backward: dx = y ⊙ (g − Σ_c g ⊙ y).
    public func softmax() -> Tensor {
        let (n, c, s) = channelLayout
        let y = Tensor(shape: shape) { out in channelSoftmax(storage.pointer, out, n: n, c: c, s: s, log: false) }
        return Tensor.record(y, inputs: [self]) { g in
            [Tensor(shape: y.shape) { dx in
                let py = y.storage.pointer, pg = g.storage.pointer
                forEachChannelColumn(n: n, c: c, s: s) { base, lo, hi in
                    // Sixteen contiguous columns at a time, as the forward; the tail is scalar.
                    var j = lo
                    while j + 16 <= hi {
                        let at = base + j
                        var dot = SIMD16<Float>(repeating: 0)
                        for k in 0..<c { dot = dot.addingProduct(loadLanes(pg + at + k * s), loadLanes(py + at + k * s)) }
                        for k in 0..<c {
                            let i = at + k * s
                            storeLanes(loadLanes(py + i) * (loadLanes(pg + i) - dot), dx + i)
                        }
                        j += 16
                    }
                    for j in j..<hi {
                        var dot: Float = 0
                        for k in 0..<c { dot = dot.addingProduct(pg[base + k * s + j], py[base + k * s + j]) }
                        for k in 0..<c { let i = base + k * s + j; dx[i] = py[i] * (pg[i] - dot) }
                    }
                }
            }]
        }
    }

    /// log(softmax(x)) over channels, computed as x − max − log Σ exp(x − max).
    /// Backward: dx = g − softmax(x) · Σ_c g.
    public func logSoftmax() -> Tensor {
        let (n, c, s) = channelLayout
        let y = Tensor(shape: shape) { out in channelSoftmax(storage.pointer, out, n: n, c: c, s: s, log: true) }
        return Tensor.record(y, inputs: [self]) { g in
            [Tensor(shape: y.shape) { dx in
                let py = y.storage.pointer, pg = g.storage.pointer
                forEachChannelColumn(n: n, c: c, s: s) { base, lo, hi in
                    for j in lo..<hi {
                        var total: Float = 0
                        for k in 0..<c { total += pg[base + k * s + j] }
                        for k in 0..<c { let i = base + k * s + j; dx[i] = pg[i] - Foundation.exp(py[i]) * total }
                    }
                }
            }]
        }
    }

    /// (N, C, spatial count) of an image tensor `[N, C, ...]`.
    var channelLayout: (Int, Int, Int) {
        precondition(rank >= 2, "channel operation on a tensor of shape \(shape)")
        return (shape[0], shape[1], shape.dropFirst(2).reduce(1, *))
    }
}

/// Calls `body(batchBase, lo, hi)` over blocks of spatial columns of each batch item, in
/// parallel; `batchBase = b·C·S` is the offset of item b.
func forEachChannelColumn(n: Int, c: Int, s: Int, _ body: (Int, Int, Int) -> Void) {
    let block = 2048
    let blocks = (s + block - 1) / block
    Parallel.forEach(n * blocks) { t in
        let b = t / blocks, k = t % blocks
        body(b * c * s, k * block, min(s, (k + 1) * block))
    }
}

/// Softmax (or log-softmax) over channels, column by column, with the max subtracted. Sixteen
/// contiguous columns at a time, with the vector `vexp`/`vlog`; the tail of a block is scalar.
func channelSoftmax(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, n: Int, c: Int, s: Int, log: Bool) {
    forEachChannelColumn(n: n, c: c, s: s) { base, lo, hi in
        var j = lo
        while j + 16 <= hi {
            let at = base + j
            var m = loadLanes(x + at)
            for k in 1..<max(c, 1) { let v = loadLanes(x + at + k * s); m.replace(with: v, where: v .> m) }
            var total = SIMD16<Float>(repeating: 0)
            for k in 0..<c { let e = vexp(loadLanes(x + at + k * s) - m); storeLanes(e, y + at + k * s); total += e }
            if log {
                let shift = m + vlog(total)
                for k in 0..<c { storeLanes(loadLanes(x + at + k * s) - shift, y + at + k * s) }
            } else {
                let inv = 1 / total
                for k in 0..<c { storeLanes(loadLanes(y + at + k * s) * inv, y + at + k * s) }
            }
            j += 16
        }
        for j in j..<hi {
            var m = -Float.infinity
            for k in 0..<c { m = max(m, x[base + k * s + j]) }
            var total: Float = 0
            for k in 0..<c { let e = Foundation.exp(x[base + k * s + j] - m); y[base + k * s + j] = e; total += e }
            if log {
                let lt = Foundation.log(total)
                for k in 0..<c { let i = base + k * s + j; y[i] = x[i] - m - lt }
            } else {
                let inv = 1 / total
                for k in 0..<c { y[base + k * s + j] *= inv }
            }
        }
    }
}
