import Foundation

// Fixed-kernel separable filters: correlation (PyTorch `F.conv2d`/`conv3d` — no kernel flip)
// of every `[D, H, W]` plane with an outer product of 1-D taps, zero padding, "same" size.
// Used for Gaussian smoothing and Sobel derivatives (seed 000's PRL loss).

/// Odd-length 1-D taps per spatial axis; the kernel is their outer product `d ⊗ h ⊗ w`.
/// 2D kernels leave `d = [1]`. Tap `k` of an axis with `r = taps.count / 2` multiplies the
/// input at offset `k − r` (correlation, as `F.conv2d`).
public struct SeparableKernel: Hashable, Sendable {
    /// Taps along D (z); `[1]` for 2D.
    public var d: [Float]
    /// Taps along H (y).
    public var h: [Float]
    /// Taps along W (x).
    public var w: [Float]

    public init(d: [Float] = [1], h: [Float], w: [Float]) {
        for taps in [d, h, w] {
            precondition(taps.count % 2 == 1, "SeparableKernel: taps must have odd length, got \(taps)")
        }
        self.d = d; self.h = h; self.w = w
    }

    /// The adjoint (transpose) of correlating with `self`: the same taps reversed on every axis.
    public var adjoint: SeparableKernel {
        SeparableKernel(d: d.reversed(), h: h.reversed(), w: w.reversed())
    }

    /// The kernel multiplied by `factor` (applied to the W taps).
    public func scaled(by factor: Float) -> SeparableKernel {
        SeparableKernel(d: d, h: h, w: w.map { $0 * factor })
    }

    /// The dense kernel `[D, H, W]`, row-major — for tests and for code that wants the
    /// seed's explicit matrix.
    public var dense: [Float] {
        var out: [Float] = []
        out.reserveCapacity(d.count * h.count * w.count)
        for a in d { for b in h { for c in w { out.append(a * b * c) } } }
        return out
    }

    /// Normalised isotropic Gaussian of standard deviation `sigma` voxels on `rank` axes
    /// (2 or 3): seed 000's `_gaussian_kernel`, made separable. See `gaussianTaps(sigma:)`.
    public static func gaussian(sigma: Double, rank: Int) -> SeparableKernel {
        precondition(rank == 2 || rank == 3, "SeparableKernel.gaussian: rank must be 2 or 3")
        let g = gaussianTaps(sigma: sigma)
        return SeparableKernel(d: rank == 3 ? g : [1], h: g, w: g)
    }

    /// Sobel derivative along spatial `axis` of a rank-`rank` kernel (rank 2: 0 = H, 1 = W;
    /// rank 3: 0 = D, 1 = H, 2 = W): `[-1, 0, 1]` along `axis` ⊗ `[1, 2, 1]` along the others
    /// (FORMAT.md's 3D PRL convention; a positive response where intensity grows with the index).
    ///
    /// Seed 000's 2D matrices: `sobel_x = sobel(axis: 1, rank: 2)` exactly, and `sobel_y =
    /// [[1,2,1],[0,0,0],[-1,-2,-1]] = sobel(axis: 0, rank: 2).scaled(by: -1)` (the seed's y
    /// derivative has the opposite sign).
    public static func sobel(axis: Int, rank: Int) -> SeparableKernel {
        precondition((rank == 2 || rank == 3) && (0..<rank).contains(axis), "SeparableKernel.sobel: bad axis \(axis) for rank \(rank)")
        let derivative: [Float] = [-1, 0, 1], smooth: [Float] = [1, 2, 1]
        let axes = (0..<rank).map { $0 == axis ? derivative : smooth }
        return rank == 3 ? SeparableKernel(d: axes[0], h: axes[1], w: axes[2]) : SeparableKernel(h: axes[0], w: axes[1])
    }
}

/// 1-D Gaussian taps whose outer product is seed 000's `_gaussian_kernel(sigma)`: size
/// `2·⌈3σ⌉ + 1` (made odd), `exp(−x²/(2σ²))` at integer offsets from the centre, normalised to
/// sum 1. Because `exp(−(x² + y²)/(2σ²)) = exp(−x²/(2σ²))·exp(−y²/(2σ²))` and the 2D sum is the
/// square of the 1-D sum, `taps ⊗ taps` equals the seed's normalised 2D kernel (and
/// `taps ⊗ taps ⊗ taps` the 3D one) up to float rounding (computed in double, then rounded).
public func gaussianTaps(sigma: Double) -> [Float] {
    precondition(sigma > 0 && sigma.isFinite, "gaussianTaps: sigma must be positive, got \(sigma)")
    var size = Int(2 * (3 * sigma).rounded(.up) + 1)
    if size % 2 == 0 { size += 1 }
    let half = size / 2
    let raw = (0..<size).map { i -> Double in
        let x = Double(i - half)
        return exp(-(x * x) / (2 * sigma * sigma))
    }
    let total = raw.reduce(0, +)
    return raw.map { Float($0 / total) }
}

/// `dst = src ⋆ kernel` for every plane: `dst[p, z, y, x] = Σ d[a]·h[b]·w[c] ·
/// src[p, z+a−rd, y+b−rh, x+c−rw]`, zero outside the volume, same size (PyTorch
/// `conv3d(src, kernel, padding=r)`; for 2D `conv2d`).
///
/// - Parameters:
///   - src, dst: `[planes, D, H, W]` contiguous (`planes = N · C`); must not overlap.
///   - extent: `[D, H, W]` (2D: `D = 1`; a D-tap list of `[1]` skips that pass).
/// Its derivative w.r.t. `src` is `separableCorrelateAdjoint` (the kernel is fixed).
/// Runs on `Parallel.threads` threads.
public func separableCorrelate(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>,
    planes: Int, extent: SpatialExtent, kernel: SeparableKernel
) {
    kernel.d.withUnsafeBufferPointer { dTaps in
        kernel.h.withUnsafeBufferPointer { hTaps in
            kernel.w.withUnsafeBufferPointer { wTaps in
                runSeparablePasses(
                    src, into: dst, planes: planes, extent: extent, depthPass: kernel.d != [1], rowPadding: 2 * (wTaps.count / 2) + 16,
                    lines: { s, d, n, stride, width, axis in
                        correlateLines(s, d, n: n, stride: stride, width: width, taps: axis == 0 ? dTaps : hTaps)
                    },
                    row: { s, d, n, padded in correlateRow(s, d, n: n, taps: wTaps, padded: padded) })
            }
        }
    }
}

/// The adjoint of `separableCorrelate` with the same kernel: correlation with every axis's
/// taps reversed. This is the backward pass w.r.t. the input: `grad_src =
/// separableCorrelateAdjoint(grad_dst)`. Shapes as `separableCorrelate`.
public func separableCorrelateAdjoint(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>,
    planes: Int, extent: SpatialExtent, kernel: SeparableKernel
) {
    separableCorrelate(src, into: dst, planes: planes, extent: extent, kernel: kernel.adjoint)
}

/// Correlation along one axis of `width` parallel lines (rows `i · stride`): output row `i` is
/// `Σ_k taps[k] · src row (i + k − r)` over rows inside `0..<n`; whole rows with SIMD FMAs.
@inline(__always)
private func correlateLines(
    _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, n: Int, stride: Int, width: Int,
    taps: UnsafeBufferPointer<Float>
) {
    let r = taps.count / 2
    for i in 0..<n {
        let out = dst + i * stride
        let kLo = max(0, r - i), kHi = min(taps.count - 1, n - 1 - i + r)
        if kLo > kHi { out.update(repeating: 0, count: width); continue }
        rowScale(out, src + (i + kLo - r) * stride, taps[kLo], width)
        if kLo < kHi {
            for k in (kLo + 1)...kHi { rowAxpy(out, src + (i + k - r) * stride, taps[k], width) }
        }
    }
}

/// Correlation along one contiguous row, 16 outputs at a time: the row is copied into
/// `padded` between `r` zeros on each side, so every tap is one unaligned SIMD load.
@inline(__always)
private func correlateRow(
    _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, n: Int,
    taps: UnsafeBufferPointer<Float>, padded: UnsafeMutablePointer<Float>
) {
    let r = taps.count / 2
    padded.update(repeating: 0, count: r)
    (padded + r).update(from: src, count: n)
    (padded + r + n).update(repeating: 0, count: r + 16)
    var x = 0
    while x + 16 <= n {
        var acc = Lanes(repeating: taps[0]) * loadLanes(padded + x)
        for k in 1..<taps.count { acc = acc.addingProduct(Lanes(repeating: taps[k]), loadLanes(padded + x + k)) }
        storeLanes(acc, dst + x)
        x += 16
    }
    while x < n {
        var acc: Float = 0
        for k in 0..<taps.count { acc = acc.addingProduct(taps[k], padded[x + k]) }
        dst[x] = acc
        x += 1
    }
}
