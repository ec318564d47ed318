// Box sums: the sum over a `window`^nd neighbourhood centred on each voxel, zero padding,
// "same" size — what seed 002's local NCC gets from `conv3d(I, ones(9,9,9), padding=4)`.
// Separable, one pass per axis, each pass a running sum: O(1) per voxel per axis whatever the
// window.

/// Running sums restart from an exact window sum every `boxRestart` steps, so float rounding
/// cannot drift along a long line (the error stays that of a ~32-term sum, like the direct
/// convolution's). Costs `window / boxRestart` extra adds per voxel.
let boxRestart = 32

/// Box sum of every plane: `dst[p, z, y, x] = Σ src[p, z+i, y+j, x+k]` over
/// `|i|, |j|, |k| ≤ window / 2` inside the volume (zero padding), for `p` in `0..<planes`.
///
/// - Parameters:
///   - src, dst: `[planes, D, H, W]` contiguous, `planes = N · C`. Must not overlap.
///   - extent: `[D, H, W]`; 2D data has `D = 1`, where the D pass is the identity and skipped.
///   - window: odd window size in voxels along every axis.
///
/// The box sum matrix is symmetric (voxel `a` is in `b`'s window iff `b` is in `a`'s), so the
/// operator is **self-adjoint**: its backward pass is `boxSum` of the incoming gradient.
/// Runs on `Parallel.threads` threads (`runSeparablePasses`: columns of the D pass, then slices).
public func boxSum(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>,
    planes: Int, extent: SpatialExtent, window: Int
) {
    precondition(window >= 1 && window % 2 == 1, "boxSum: window must be odd and positive, got \(window)")
    let r = window / 2
    // D = 1 (2D data): the D pass is the identity.
    runSeparablePasses(src, into: dst, planes: planes, extent: extent, depthPass: extent.d > 1, rowPadding: 2 * r + 1,
                       lines: { s, d, n, stride, width, _ in boxLines(s, d, n: n, stride: stride, width: width, radius: r) },
                       row: { s, d, n, padded in boxRow(s, d, n: n, radius: r, padded: padded) })
}

/// Box sum along one axis of `width` parallel lines (rows `i · stride`, lanes contiguous):
/// `dst[i] = Σ_{|j − i| ≤ radius, 0 ≤ j < n} src[j]`, whole rows at a time with SIMD.
@inline(__always)
private func boxLines(
    _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, n: Int, stride: Int, width: Int, radius r: Int
) {
    for i in 0..<n {
        let out = dst + i * stride
        if i % boxRestart == 0 {
            let lo = max(0, i - r), hi = min(n - 1, i + r)
            out.update(from: src + lo * stride, count: width)
            if lo < hi { for j in (lo + 1)...hi { rowAdd(out, src + j * stride, width) } }
        } else {
            rowSlide(out, out - stride,
                     plus: i + r < n ? src + (i + r) * stride : nil,
                     minus: i - r - 1 >= 0 ? src + (i - r - 1) * stride : nil, width)
        }
    }
}

/// Box sum along one contiguous row of `n` floats. The row is copied into `padded` with
/// `radius + 1` zeros in front and `radius` behind, so the running sum needs no edge branches:
/// `out[x] = Σ padded[x+1 ... x+2r+1]`.
@inline(__always)
private func boxRow(
    _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, n: Int, radius r: Int,
    padded: UnsafeMutablePointer<Float>
) {
    let span = 2 * r + 1
    padded.update(repeating: 0, count: r + 1)
    (padded + r + 1).update(from: src, count: n)
    (padded + r + 1 + n).update(repeating: 0, count: r)
    var acc: Float = 0
    for x in 0..<n {
        if x % boxRestart == 0 {
            acc = 0
            for t in 1...span { acc += padded[x + t] }
        } else {
            acc += padded[x + span] - padded[x]
        }
        dst[x] = acc
    }
}
