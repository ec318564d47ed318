import MorphoKernels

/// NumPy/PyTorch broadcasting: shapes are aligned on the right, and a dimension of 1 (or a
/// missing leading one) stretches to match. `[N, C, D, H, W] + [1, C, 1, 1, 1]` adds a
/// per-channel value, for example.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    let r = max(a.count, b.count)
    let pa = Array(repeating: 1, count: r - a.count) + a
    let pb = Array(repeating: 1, count: r - b.count) + b
    return zip(pa, pb).map { x, y in
        precondition(x == y || x == 1 || y == 1, "shapes \(a) and \(b) do not broadcast")
        return max(x, y)
    }
}

/// A walk over an output shape with up to three operands, each with its own element strides
/// (0 along broadcast axes). Neighbouring axes on which every operand behaves alike are merged,
/// so the innermost loop is as long as possible: `[N, C, D·H·W]` for a per-channel operation.
struct StridedWalk {
    var sizes: [Int]
    var strides: [[Int]]  // strides[operand][axis]

    init(shape: [Int], operands: [[Int]]) {
        let r = shape.count
        // Element strides of each operand after right-aligning and zeroing broadcast axes.
        var raw: [[Int]] = []
        for opShape in operands {
            let padded = Array(repeating: 1, count: r - opShape.count) + opShape
            var s = Array(repeating: 0, count: r)
            var acc = 1
            for ax in stride(from: r - 1, through: 0, by: -1) {
                s[ax] = padded[ax] == 1 && shape[ax] != 1 ? 0 : acc
                acc *= padded[ax]
            }
            raw.append(s)
        }
        var sizes: [Int] = []
        var strides: [[Int]] = Array(repeating: [], count: operands.count)
        for ax in 0..<r where shape[ax] != 1 {
            if let last = sizes.indices.last,
               (0..<operands.count).allSatisfy({ k in strides[k][last] == raw[k][ax] * shape[ax] }) {
                sizes[last] *= shape[ax]
                for k in 0..<operands.count { strides[k][last] = raw[k][ax] }
            } else {
                sizes.append(shape[ax])
                for k in 0..<operands.count { strides[k].append(raw[k][ax]) }
            }
        }
        if sizes.isEmpty {
            sizes = [1]
            strides = Array(repeating: [1], count: operands.count)
        }
        self.sizes = sizes
        self.strides = strides
    }

    /// Calls `row(offsets, length)` for every innermost row; `offsets[k]` is operand k's start.
    /// The innermost strides are `strides[k].last!`.
    func forEachRow(_ row: (_ offsets: UnsafePointer<Int>, _ length: Int) -> Void) {
        let n = sizes.count
        let inner = sizes[n - 1]
        let ops = strides.count
        var counter = Array(repeating: 0, count: n)
        var offsets = Array(repeating: 0, count: ops)
        let rows = sizes.dropLast().reduce(1, *)
        for _ in 0..<rows {
            offsets.withUnsafeBufferPointer { row($0.baseAddress!, inner) }
            // Advance the outer counter (odometer), updating every operand's offset.
            var ax = n - 2
            while ax >= 0 {
                counter[ax] += 1
                for k in 0..<ops { offsets[k] += strides[k][ax] }
                if counter[ax] < sizes[ax] { break }
                for k in 0..<ops { offsets[k] -= strides[k][ax] * sizes[ax] }
                counter[ax] = 0
                ax -= 1
            }
        }
    }
}

extension Tensor {
    /// Sums this tensor down to `target` (a shape it broadcasts from): the adjoint of
    /// broadcasting, used by every broadcasting op's backward. Accumulates in Double.
    public func sum(toShape target: [Int]) -> Tensor {
        if target == shape { return self }
        precondition(broadcastShape(target, shape) == shape, "cannot reduce \(shape) to \(target)")
        let walk = StridedWalk(shape: shape, operands: [shape, target])
        let outCount = target.reduce(1, *)
        var acc = [Double](repeating: 0, count: outCount)
        let src = storage.pointer
        let innerIn = walk.strides[0].last!, innerOut = walk.strides[1].last!
        acc.withUnsafeMutableBufferPointer { a in
            walk.forEachRow { off, n in
                let i0 = off[0], o0 = off[1]
                if innerOut == 0 {
                    var s = 0.0
                    for j in 0..<n { s += Double(src[i0 + j * innerIn]) }
                    a[o0] += s
                } else {
                    for j in 0..<n { a[o0 + j * innerOut] += Double(src[i0 + j * innerIn]) }
                }
            }
        }
        let out = Tensor(shape: target) { p in for i in 0..<outCount { p[i] = Float(acc[i]) } }
        return Tensor.record(out, inputs: [self]) { [shape] g in [g.broadcast(to: shape)] }
    }

    /// This tensor repeated along its size-1 axes to `target` (differentiable).
    public func broadcast(to target: [Int]) -> Tensor {
        if target == shape { return self }
        precondition(broadcastShape(shape, target) == target, "cannot broadcast \(shape) to \(target)")
        let walk = StridedWalk(shape: target, operands: [target, shape])
        let src = storage.pointer
        let so = walk.strides[0].last!, si = walk.strides[1].last!
        let out = Tensor(shape: target) { dst in
            walk.forEachRow { off, n in
                for j in 0..<n { dst[off[0] + j * so] = src[off[1] + j * si] }
            }
        }
        return Tensor.record(out, inputs: [self]) { [shape] g in [g.sum(toShape: shape)] }
    }
}
