import Foundation
import MorphoKernels
import MorphoTensor

/// Global normalised cross-correlation (seed 002 `GCC`):
///
///     cc = cov(I, J) / (σ_I · σ_J + ε),   L = 1 − cc,   ε = 2.22e-16 (float64 machine epsilon)
///
/// with the moments taken over the whole tensor (all items and channels together, as the seed).
///
/// - I, J: any shape with the same element count (images `[N, C, spatial...]`).
/// - Moments are accumulated in Double, so the `E[I²] − E[I]²` form loses nothing to cancellation.
/// - Degenerate inputs: a constant image has σ = 0 and cov = 0, so cc = 0 and L = 1; its
///   gradient keeps only the finite cov term (PyTorch would propagate 0·∞ = NaN through the
///   square root). A negative variance from rounding is clamped to 0.
public struct GlobalNCC: Sendable {
    public var eps: Double

    public init(eps: Double = 2.220446049250313e-16) { self.eps = eps }

    public func callAsFunction(_ i: Tensor, _ j: Tensor) -> Tensor {
        precondition(i.count == j.count && i.count > 0, "GlobalNCC: \(i.shape) and \(j.shape) differ or are empty")
        let count = i.count
        let a = i.storage.pointer, b = j.storage.pointer
        let s = blockSums(items: 1, spatial: count, width: 5, block: 8192) { _, range, acc in
            var si = 0.0, sj = 0.0, sii = 0.0, sjj = 0.0, sij = 0.0
            for v in range {
                let x = Double(a[v]), y = Double(b[v])
                si += x; sj += y; sii += x * x; sjj += y * y; sij += x * y
            }
            acc[0] = si; acc[1] = sj; acc[2] = sii; acc[3] = sjj; acc[4] = sij
        }
        let m = Double(count)
        let mi = s[0] / m, mj = s[1] / m
        let cross = s[4] / m - mi * mj
        let varI = max(0, s[2] / m - mi * mi), varJ = max(0, s[3] / m - mj * mj)
        let sdI = varI.squareRoot(), sdJ = varJ.squareRoot()
        let den = sdI * sdJ + eps
        let cc = cross / den
        let value = Tensor(scalar: Float(1 - cc))
        return Tensor.record(value, inputs: [i, j]) { g in
            // dL/dI_v = −(1/M) [ (J_v − μ_J)/den − cross·σ_J/(den²·σ_I) · (I_v − μ_I) ], and symmetrically.
            let up = Double(g.item)
            func gradient(_ x: Tensor, _ y: Tensor, mx: Double, my: Double, sdX: Double, sdY: Double) -> Tensor {
                let cy = Float(-up / (m * den))
                let cx = sdX > 0 ? Float(up * cross * sdY / (den * den * sdX) / m) : 0
                let px = x.storage.pointer, py = y.storage.pointer
                let fx = Float(mx), fy = Float(my)
                return Tensor(shape: x.shape) { out in
                    Parallel.forRanges(count) { r in
                        for v in r { out[v] = cy * (py[v] - fy) + cx * (px[v] - fx) }
                    }
                }
            }
            return [i.requiresGrad ? gradient(i, j, mx: mi, my: mj, sdX: sdI, sdY: sdJ) : nil,
                    j.requiresGrad ? gradient(j, i, mx: mj, my: mi, sdX: sdJ, sdY: sdI) : nil]
        }
    }
}

/// Local (windowed) normalised cross-correlation, squared (seed 002 `LCC`; VoxelMorph's NCC):
/// with box sums S_X over a `window`^nd neighbourhood (zero padding, "same" size) and
/// n = window^nd (the full window size, also at the borders, as the seed),
///
///     cross = S_IJ − S_I·S_J/n,  var_I = S_II − S_I²/n,  var_J = S_JJ − S_J²/n
///     cc    = cross² / (var_I·var_J + eps),   L = 1 − mean_v cc
///
/// - I, J: `[N, C, H, W]` or `[N, C, D, H, W]` (C is usually 1; channels are independent).
/// - window: odd, in voxels along every spatial axis (9 in the seed). The box sums are separable
///   running sums (`MorphoKernels.boxSum`), so the cost does not depend on the window.
/// - Reduction: mean over every voxel of every item and channel.
/// - Degenerate inputs: where either window is constant, cross = var = 0 and cc = 0/eps = 0
///   (no NaN); the gradient there is finite too. Near the border the zero padding makes the
///   windows of a constant image non-constant, exactly as in the seed.
/// - Backward (hand-written, fused): with a = ∂cc/∂cross, b = ∂cc/∂var_I, c = ∂cc/∂var_J, the
///   gradient is `box(a_I) + 2I·box(b) + J·box(a)` for I, where
///   `a_I = −(a·S_J + 2b·S_I)/n` (and symmetrically for J); the box sum is self-adjoint.
///   The per-voxel coefficient maps are computed in the forward pass when a gradient is wanted
///   (overwriting the box sums they come from), so the backward is box(a) once, then two box
///   sums and one combining pass per differentiated input. Buffers are one volume
///   each, so large volumes reuse the allocator's free blocks instead of fresh pages; the
///   forward takes five (the sums), the backward one more than the maps it keeps.
public struct LocalNCC: Sendable {
    public var window: Int
    public var eps: Float

    public init(window: Int = 9, eps: Float = 1e-5) {
        precondition(window > 0 && window % 2 == 1, "LocalNCC: the window must be odd and positive, got \(window)")
        self.window = window
        self.eps = eps
    }

    public func callAsFunction(_ i: Tensor, _ j: Tensor) -> Tensor {
        i.preconditionImage("LocalNCC")
        precondition(i.shape == j.shape, "LocalNCC: \(i.shape) and \(j.shape) differ")
        let planes = i.shape[0] * i.shape[1]
        let extent = SpatialExtent(i.spatialShape)
        let n = Float(Foundation.pow(Double(window), Double(i.spatialRank)))
        let invN = 1 / n, eps = self.eps, window = self.window
        let total = i.count
        let wantI = GradientMode.isEnabled && i.requiresGrad, wantJ = GradientMode.isEnabled && j.requiresGrad
        func box(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
            boxSum(src, into: dst, planes: planes, extent: extent, window: window)
        }

        // Box sums S_I, S_J, S_II, S_JJ, S_IJ, one buffer each. The products pass through the
        // buffer of S_I before it receives S_I, the last sum taken: no sixth volume.
        let maps = (0..<5).map { _ in TensorStorage(uninitializedCount: total) }
        let pi = i.storage.pointer, pj = j.storage.pointer
        let t = maps[0].pointer
        for (k, product) in [(2, 0), (3, 1), (4, 2)] {
            Parallel.forRanges(total) { r in
                switch product {
                case 0: for v in r { t[v] = pi[v] * pi[v] }
                case 1: for v in r { t[v] = pj[v] * pj[v] }
                default: for v in r { t[v] = pi[v] * pj[v] }
                }
            }
            box(t, maps[k].pointer)
        }
        box(pj, maps[1].pointer)
        box(pi, maps[0].pointer)

        // cc per voxel, summed. With a gradient wanted, the same pass overwrites the sums with the
        // coefficient maps: S_I → a_I, S_J → a_J, S_II → b, S_JJ → c, S_IJ → a.
        let sI = maps[0].pointer, sJ = maps[1].pointer, sII = maps[2].pointer, sJJ = maps[3].pointer, sIJ = maps[4].pointer
        let keep = wantI || wantJ
        let ccSum = blockSums(items: 1, spatial: total, width: 1, block: 8192) { _, range, acc in
            var partial = Lanes()
            var v = range.lowerBound
            while v < range.upperBound {
                let count = min(16, range.upperBound - v), full = count == 16
                @inline(__always) func get(_ p: UnsafeMutablePointer<Float>) -> Lanes { full ? loadLanes(p + v) : loadLanes(p + v, count: count) }
                @inline(__always) func put(_ x: Lanes, _ p: UnsafeMutablePointer<Float>) {
                    if full { storeLanes(x, p + v) } else { storeLanes(x, p + v, count: count) }
                }
                let si = get(sI), sj = get(sJ)
                let varI = get(sII) - si * si * invN
                let varJ = get(sJJ) - sj * sj * invN
                let cross = get(sIJ) - si * sj * invN
                let den = varI * varJ + eps
                let ratio = cross / den
                let cc = cross * ratio
                partial += cc   // padding lanes hold zeros: cross = 0, cc = 0
                if keep {
                    let a = 2 * ratio                 // ∂cc/∂cross
                    let b = -cc * varJ / den          // ∂cc/∂var_I
                    let c = -cc * varI / den          // ∂cc/∂var_J
                    put(-(a * sj + 2 * b * si) * invN, sI)
                    put(-(a * si + 2 * c * sj) * invN, sJ)
                    put(b, sII)
                    put(c, sJJ)
                    put(a, sIJ)
                }
                v += 16
            }
            acc[0] = laneSum(partial)
        }[0]
        let value = Tensor(scalar: Float(1 - ccSum / Double(total)))
        guard keep else { return value }
        // Only the maps the backward reads stay alive: [a_I, a_J, b, c, a] of the wanted inputs.
        // The backward lets each go once it is boxed (it runs once), so it adds one volume to
        // them at a time.
        var linear = [wantI ? maps[0] : nil, wantJ ? maps[1] : nil]
        var square = [wantI ? maps[2] : nil, wantJ ? maps[3] : nil]
        var shared: TensorStorage? = maps[4]

        return Tensor.record(value, inputs: [i, j]) { g in
            let scale = -g.item / Float(total)
            let boxedA = TensorStorage(uninitializedCount: total)
            box(shared!.pointer, boxedA.pointer)
            shared = nil
            let images = [i, j]
            // d/dX = scale · (box(a_X) + 2X·box(b_X) + Y·box(a)), with (X, Y) = (I, J) or (J, I).
            func gradient(_ k: Int) -> Tensor? {
                guard linear[k] != nil, square[k] != nil else { return nil }
                let out = TensorStorage(uninitializedCount: total)
                box(linear[k]!.pointer, out.pointer)
                linear[k] = nil
                let boxedSquare = TensorStorage(uninitializedCount: total)
                box(square[k]!.pointer, boxedSquare.pointer)
                square[k] = nil
                let o = out.pointer, x = images[k].storage.pointer, y = images[1 - k].storage.pointer
                let ba = boxedA.pointer, bs = boxedSquare.pointer
                Parallel.forRanges(total) { r in
                    for v in r { o[v] = scale * (o[v] + 2 * x[v] * bs[v] + y[v] * ba[v]) }
                }
                return withExtendedLifetime(boxedSquare) { Tensor(shape: images[k].shape, storage: out) }
            }
            return [gradient(0), gradient(1)]
        }
    }
}
