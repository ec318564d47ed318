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
