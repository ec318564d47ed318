// Max and average pooling over `[planes, D, H, W]` (`planes = N · C`), PyTorch `max_pool2d/3d`
// and `avg_pool2d/3d` with padding 0 and `ceil_mode=False`: a cubic window of `kernel` voxels
// moved by `stride`, over H and W for rank 2 and over D, H and W for rank 3.

/// Output extent of pooling: `(n − kernel) / stride + 1` along each pooled axis (D is pooled
/// for rank 3 only). Every pooled axis must be at least `kernel` long.
public func pooledExtent(_ extent: SpatialExtent, kernel: Int, stride: Int) -> SpatialExtent {
    precondition(kernel >= 1 && stride >= 1, "pooling: kernel and stride must be positive")
    func out(_ n: Int) -> Int {
        precondition(n >= kernel, "pooling: axis of \(n) voxels is shorter than the \(kernel)-voxel window")
        return (n - kernel) / stride + 1
    }
    return extent.rank == 3 ? SpatialExtent(d: out(extent.d), h: out(extent.h), w: out(extent.w))
                            : SpatialExtent(h: out(extent.h), w: out(extent.w))
}

/// Max pooling: `dst[p, o] = max` of `src[p]` over the window of output voxel `o`, and
/// `argmax[p, o]` = the winning voxel's flat index `(z·H + y)·W + x` inside plane `p` (the
/// first maximum in scan order; a NaN wins, as in PyTorch).
///
/// - Parameters:
///   - src: `[planes, D, H, W]` with spatial size `extent`.
///   - dst, argmax: `[planes, pooledExtent(extent, kernel:, stride:)]`.
public func maxPool(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>,
    planes: Int, extent: SpatialExtent, kernel: Int, stride: Int
) {
    let g = PoolGeometry(extent: extent, kernel: kernel, stride: stride)
    g.forEachOutputRow(planes: planes) { p, o, oz, oy in
        let s = src + p * extent.count
        var ox = 0
        if kernel == 2 && stride == 2 {
            ox = maxPool2Row(s, dst + o, argmax + o, oz: oz, oy: oy, g: g)
        }
        while ox < g.out.w {
            defer { ox += 1 }
            var best = -Float.infinity
            var at = g.windowRow(oz, 0, oy, 0, ox)
            for a in 0..<g.kd { for b in 0..<g.kernel {
                let row = g.windowRow(oz, a, oy, b, ox)
                for c in 0..<g.kernel {
                    let v = s[row + c]
                    if v > best || v.isNaN { best = v; at = row + c }
                }
            } }
            dst[o + ox] = best
            argmax[o + ox] = Int32(truncatingIfNeeded: at)
        }
    }
}

/// The `kernel = stride = 2` case (every UNet encoder) for one output row, 16 outputs at a
/// time: each window row is one 32-float load split into even and odd columns, and the
/// running maximum and its index are selected lane-wise in scan order (a later candidate wins
/// only if strictly greater or NaN, as in the scalar loop). Returns the outputs done; the
/// caller finishes the row.
@inline(__always)
private func maxPool2Row(
    _ s: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ argmax: UnsafeMutablePointer<Int32>,
    oz: Int, oy: Int, g: PoolGeometry
) -> Int {
    let w = g.w, hw = g.h * g.w
    let lane2 = SIMD16<Int32>(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
    var ox = 0
    while ox + 16 <= g.out.w && 2 * ox + 32 <= w {
        let first = g.windowRow(oz, 0, oy, 0, ox)
        var best = Lanes(repeating: -.infinity)
        var at = SIMD16<Int32>(repeating: 0)
        for a in 0..<g.kd {
            for b in 0..<2 {
                let offset = a * hw + b * w
                let pair = UnsafeRawPointer(s + first + offset).loadUnaligned(as: SIMD32<Float>.self)
                let even = evenLanes(pair), odd = oddLanes(pair)
                let base = lane2 &+ Int32(truncatingIfNeeded: first + offset)
                let evenWins = (even .> best) .| (even .!= even)
                best.replace(with: even, where: evenWins)
                at.replace(with: base, where: evenWins)
                let oddWins = (odd .> best) .| (odd .!= odd)
                best.replace(with: odd, where: oddWins)
                at.replace(with: base &+ 1, where: oddWins)
            }
        }
        storeLanes(best, dst + ox)
        UnsafeMutableRawPointer(argmax + ox).storeBytes(of: at, as: SIMD16<Int32>.self)
        ox += 16
    }
    return ox
}

/// Backward of `maxPool`: `gradIn[p, argmax[p, o]] += gradOut[p, o]`, zero elsewhere
/// (overwrites `gradIn`, `[planes, extent]`). Overlapping windows (`stride < kernel`)
/// accumulate; planes run in parallel, so no two threads write the same voxel.
public func maxPoolBackward(
    _ gradOut: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, into gradIn: UnsafeMutablePointer<Float>,
    planes: Int, extent: SpatialExtent, kernel: Int, stride: Int
) {
    let g = PoolGeometry(extent: extent, kernel: kernel, stride: stride)
    let outCount = g.out.count
    Parallel.forEach(planes) { p in
        let gi = gradIn + p * extent.count
        gi.update(repeating: 0, count: extent.count)
        let go = gradOut + p * outCount, am = argmax + p * outCount
        for o in 0..<outCount { gi[Int(am[o])] += go[o] }
    }
}

/// Average pooling: `dst[p, o] =` the mean of `src[p]` over the `kernel^rank` voxels of output
/// voxel `o`'s window. Shapes as `maxPool`.
public func averagePool(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>,
    planes: Int, extent: SpatialExtent, kernel: Int, stride: Int
) {
    let g = PoolGeometry(extent: extent, kernel: kernel, stride: stride)
    let scale = 1 / Float(g.kd * kernel * kernel)
    g.forEachOutputRow(planes: planes) { p, o, oz, oy in
        let s = src + p * extent.count
        var ox = 0
        if kernel == 2 && stride == 2 {
            // 16 outputs at a time: even + odd columns of each window row.
            while ox + 16 <= g.out.w && 2 * ox + 32 <= g.w {
                var sum = Lanes()
                for a in 0..<g.kd { for b in 0..<2 {
                    let pair = UnsafeRawPointer(s + g.windowRow(oz, a, oy, b, ox)).loadUnaligned(as: SIMD32<Float>.self)
                    sum += evenLanes(pair) + oddLanes(pair)
                } }
                storeLanes(sum * scale, dst + o + ox)
                ox += 16
            }
        }
        while ox < g.out.w {
            defer { ox += 1 }
            var sum: Float = 0
            for a in 0..<g.kd { for b in 0..<g.kernel {
                let row = g.windowRow(oz, a, oy, b, ox)
                for c in 0..<g.kernel { sum += s[row + c] }
            } }
            dst[o + ox] = sum * scale
        }
    }
}

/// Backward of `averagePool`: every input voxel receives `gradOut / kernel^rank` from each
/// window containing it; voxels in no window (the remainder when the size is not a multiple
/// of the stride) get 0. Overwrites `gradIn` (`[planes, extent]`).
public func averagePoolBackward(
    _ gradOut: UnsafePointer<Float>, into gradIn: UnsafeMutablePointer<Float>,
    planes: Int, extent: SpatialExtent, kernel: Int, stride: Int
) {
    let g = PoolGeometry(extent: extent, kernel: kernel, stride: stride)
    let scale = 1 / Float(g.kd * kernel * kernel)
    let outCount = g.out.count
    Parallel.forEach(planes) { p in
        let gi = gradIn + p * extent.count
        gi.update(repeating: 0, count: extent.count)
        let go = gradOut + p * outCount
        for oz in 0..<g.out.d { for oy in 0..<g.out.h { for ox in 0..<g.out.w {
            let v = go[(oz * g.out.h + oy) * g.out.w + ox] * scale
            for a in 0..<g.kd { for b in 0..<g.kernel {
                let row = g.windowRow(oz, a, oy, b, ox)
                for c in 0..<g.kernel { gi[row + c] += v }
            } }
        } } }
    }
}

/// Window sizes per axis: D uses `kd = kernel`, `sd = stride` for rank 3 and 1, 1 for rank 2.
struct PoolGeometry {
    let kernel: Int, kd: Int, sd: Int
    let out: SpatialExtent
    let w: Int, h: Int, stride: Int

    init(extent: SpatialExtent, kernel: Int, stride: Int) {
        out = pooledExtent(extent, kernel: kernel, stride: stride)
        self.kernel = kernel; self.stride = stride
        kd = extent.rank == 3 ? kernel : 1
        sd = extent.rank == 3 ? stride : 1
        w = extent.w; h = extent.h
    }

    /// Flat index in the input plane of the first voxel of row `(a, b)` (D and H offsets inside
    /// the window) of output voxel `(oz, oy, ox)`'s window.
    @inline(__always) func windowRow(_ oz: Int, _ a: Int, _ oy: Int, _ b: Int, _ ox: Int) -> Int {
        ((oz * sd + a) * h + oy * stride + b) * w + ox * stride
    }

    /// Runs `body(plane, outputRowOffset, oz, oy)` for every output row, where
    /// `outputRowOffset` is the flat index of `(plane, oz, oy, 0)` in the pooled tensor; parallel
    /// over (plane, oz), so rows of one output slice stay in one thread.
    @inline(__always) func forEachOutputRow(planes: Int, _ body: (Int, Int, Int, Int) -> Void) {
        Parallel.forEach(planes * out.d) { item in
            let p = item / out.d, oz = item % out.d
            for oy in 0..<out.h { body(p, (item * out.h + oy) * out.w, oz, oy) }
        }
    }
}
