import Foundation
import MorphoKernels
import MorphoTensor

/// Mutual information of two images by Parzen windowing (Mattes et al. 2001, 2003; the form of
/// MONAI's `GlobalMutualInformationLoss`, which adapts ITK's `MattesMutualInformation` and
/// DeepReg's Gaussian window):
///
///     t_v = bin coordinate of intensity x_v,   w_vb = K(b − t_v) / Σ_c K(c − t_v)   (b = 0…B−1)
///     p_ab = Σ_v ω_v wF_va wM_vb / Σ_v ω_v,   pF_a = Σ_v ω_v wF_va / Σ ω,   pM_b = Σ_v ω_v wM_vb / Σ ω
///     MI = Σ_ab p_ab · log( (p_ab + n) / (pF_a · pM_b + d) + d ),     L = −MI (lower is better)
///
/// with `n = smoothNumerator`, `d = smoothDenominator` (MONAI's `smooth_nr`, `smooth_dr`) and ω a
/// voxel mask (weights ≥ 0; 1 everywhere without one). MI is 0 for independent images and grows
/// with how well one image's intensities predict the other's, whatever the mapping between
/// them: it is the similarity of choice across contrasts and modalities (T1 vs T2, MR vs CT).
///
/// Windows (`Window`):
/// - `.bSpline` (default): Mattes' choice — a cubic B-spline window on the moving image and a
///   zero-order (box) window on the fixed one, intensities mapped to bins by each image's own
///   min/max over the masked voxels, with two bins of padding at either end so the cubic
///   window never leaves the histogram: `t = clamp(2 + (x − min)·(B − 4)/(max − min), 2, B − 3)`.
///   O(1) per voxel (4 × 2 histogram cells). This is MONAI's `kernel_type="b-spline"` exactly.
/// - `.gaussian(sigmaRatio:)`: MONAI's default (`kernel_type="gaussian"`): intensities assumed
///   in [0, 1] and clamped there, bin centres `linspace(0, 1, B)`, a Gaussian window of standard
///   deviation `sigmaRatio` bin widths on both images. O(B²) per voxel.
///
/// - fixed, moving: `[N, …]`, the same shape, N ≥ 1 items (each item one histogram over all its
///   channels and voxels, as MONAI's `B[NDHW]`); the loss is the mean of −MI over items.
/// - mask: optional voxel weights with the element count of `fixed` or of one item (then
///   shared by every item). Voxels with weight 0 take no part, not even in min/max.
/// - Gradient: with respect to `moving` only (written beside the forward below); `fixed` is a
///   constant of the graph — registration differentiates the warped moving image. With
///   `.bSpline`, moving's min and max are functions of moving too, and their derivative goes to
///   the voxels that hold them (as autograd through `torch.min/max` does).
/// - Degenerate inputs: an item with no voxel of positive weight has MI = 0 and no gradient; a
///   constant image (max = min) puts every voxel in the first bin, so MI ≈ 0 and its gradient is 0.
public struct MutualInformation: Sendable, Equatable {
    /// The Parzen window and the intensity-to-bin map it comes with (see the type's doc).
    public enum Window: Sendable, Equatable {
        case bSpline
        case gaussian(sigmaRatio: Double)
    }

    /// Histogram bins per image (B ≥ 8 for `.bSpline`: 4 of them are padding).
    public var bins: Int
    public var window: Window
    public var smoothNumerator: Double
    public var smoothDenominator: Double

    public init(bins: Int = 32, window: Window = .bSpline, smoothNumerator: Double = 1e-7, smoothDenominator: Double = 1e-7) {
        precondition(bins >= (window == .bSpline ? 8 : 2), "MutualInformation: \(bins) bins are too few for \(window)")
        if case .gaussian(let ratio) = window { precondition(ratio > 0, "MutualInformation: sigmaRatio must be positive") }
        self.bins = bins
        self.window = window
        self.smoothNumerator = smoothNumerator
        self.smoothDenominator = smoothDenominator
    }

    /// MONAI's `GlobalMutualInformationLoss(kernel_type="gaussian", num_bins:, sigma_ratio:)`.
    public static func monaiGaussian(bins: Int = 23, sigmaRatio: Double = 0.5) -> MutualInformation {
        MutualInformation(bins: bins, window: .gaussian(sigmaRatio: sigmaRatio))
    }

    /// `−MI` averaged over items, a 0-d tensor differentiable in `moving`.
    public func callAsFunction(_ fixed: Tensor, _ moving: Tensor, mask: Tensor? = nil) -> Tensor {
        precondition(fixed.shape == moving.shape && fixed.rank >= 2 && fixed.count > 0,
                     "MutualInformation: \(fixed.shape) and \(moving.shape) differ or are not [N, …]")
        let items = fixed.shape[0], perItem = fixed.count / items
        if let mask {
            precondition(mask.count == fixed.count || mask.count == perItem,
                         "MutualInformation: mask \(mask.shape) fits neither \(fixed.shape) nor one item of it")
        }
        let B = bins
        let kernel = ParzenKernel(window)
        let maskStride = mask.map { $0.count == fixed.count ? perItem : 0 } ?? 0
        let f = fixed.storage.pointer, m = moving.storage.pointer
        let w = mask?.storage.pointer
        let wantGradient = GradientMode.isEnabled && moving.requiresGrad

        // Per item: both intensity maps, the joint histogram, and what the backward needs.
        var saved: [ItemState] = []
        var total = 0.0
        for item in 0..<items {
            let fItem = f + item * perItem, mItem = m + item * perItem
            let wItem = w.map { $0 + item * maskStride }
            let fMap = kernel.map(fItem, wItem, count: perItem, bins: B)
            let mMap = kernel.map(mItem, wItem, count: perItem, bins: B)
            // Σ ω wF_a wM_b (B²), Σ ω wF_a (B), Σ ω wM_b (B), Σ ω.
            let width = B * B + 2 * B + 1
            let sums = blockSums(items: 1, spatial: perItem, width: width, block: 16384) { _, range, acc in
                if kernel.window == .bSpline {
                    // Mattes' pair of windows, unrolled: one (rarely two) fixed bin, four moving bins.
                    for v in range {
                        let omega = wItem.map { Double($0[v]) } ?? 1
                        guard omega > 0 else { continue }
                        let (af, half) = ParzenKernel.box(fMap.bin(fItem[v]).t)
                        let (am, w, _) = ParzenKernel.cubic(mMap.bin(mItem[v]).t)
                        let w0 = omega * (1 - half)
                        let row = acc + af * B + am
                        row[0] += w0 * w[0]; row[1] += w0 * w[1]; row[2] += w0 * w[2]; row[3] += w0 * w[3]
                        acc[B * B + af] += w0
                        if half > 0 {
                            let w1 = omega * half, next = row + B
                            next[0] += w1 * w[0]; next[1] += w1 * w[1]; next[2] += w1 * w[2]; next[3] += w1 * w[3]
                            acc[B * B + af + 1] += w1
                        }
                        let marginal = acc + B * B + B + am
                        marginal[0] += omega * w[0]; marginal[1] += omega * w[1]; marginal[2] += omega * w[2]; marginal[3] += omega * w[3]
                        acc[width - 1] += omega
                    }
                    return
                }
                let wf = UnsafeMutablePointer<Double>.allocate(capacity: B), wm = UnsafeMutablePointer<Double>.allocate(capacity: B)
                defer { wf.deallocate(); wm.deallocate() }
                for v in range {
                    let omega = wItem.map { Double($0[v]) } ?? 1
                    guard omega > 0 else { continue }
                    let (af, nf) = kernel.weights(fMap.bin(fItem[v]), fixedSide: true, bins: B, into: wf, derivative: nil)
                    let (am, nm) = kernel.weights(mMap.bin(mItem[v]), fixedSide: false, bins: B, into: wm, derivative: nil)
                    for i in 0..<nf {
                        let wa = omega * wf[i]
                        acc[B * B + af + i] += wa
                        let row = acc + (af + i) * B + am
                        for j in 0..<nm { row[j] += wa * wm[j] }
                    }
                    for j in 0..<nm { acc[B * B + B + am + j] += omega * wm[j] }
                    acc[width - 1] += omega
                }
            }
            let n = sums[width - 1]
            var state = ItemState(fMap: fMap, mMap: mMap, count: n, dJoint: [], dMoving: [])
            guard n > 0 else { saved.append(state); continue }
            // MI and its partial derivatives: D_ab = ∂MI/∂p_ab (pF, pM held), E_b = ∂MI/∂pM_b.
            let nr = smoothNumerator, dr = smoothDenominator
            var mi = 0.0
            var dJoint = [Double](repeating: 0, count: B * B), dMoving = [Double](repeating: 0, count: B)
            for a in 0..<B {
                let pf = sums[B * B + a] / n
                for b in 0..<B {
                    let p = sums[a * B + b] / n, pm = sums[B * B + B + b] / n
                    let den = pf * pm + dr
                    let q = (p + nr) / den + dr
                    mi += p * Foundation.log(q)
                    dJoint[a * B + b] = Foundation.log(q) + p / (q * den)
                    dMoving[b] -= p / q * (p + nr) / (den * den) * pf
                }
            }
            total += mi
            state.dJoint = dJoint
            state.dMoving = dMoving
            saved.append(state)
        }
        let value = Tensor(scalar: Float(-total / Double(items)))
        guard wantGradient else { return value }

        return Tensor.record(value, inputs: [fixed, moving]) { g in
            // The closure holds the tensors (and the mask), not just their storage pointers.
            let f = fixed.storage.pointer, m = moving.storage.pointer, w = mask?.storage.pointer
            let scale = -Double(g.item) / Double(items)
            let grad = Tensor(shape: moving.shape) { out in
                for item in 0..<items {
                    let state = saved[item]
                    let o = out + item * perItem
                    guard state.count > 0 else {
                        for v in 0..<perItem { o[v] = 0 }
                        continue
                    }
                    let fItem = f + item * perItem, mItem = m + item * perItem
                    let wItem = w.map { $0 + item * maskStride }
                    let mMap = state.mMap, fMap = state.fMap
                    // dL/dx_v = scale · ∂MI/∂t_v · ∂t_v/∂x_v; with `.bSpline` also Σ_v of the same
                    // through min (acc[0]) and max (acc[1]) of the moving image.
                    let rangeSums = state.dJoint.withUnsafeBufferPointer { dJointBuffer in
                        state.dMoving.withUnsafeBufferPointer { dMovingBuffer in
                            blockSums(items: 1, spatial: perItem, width: 2, block: 16384) { _, range, acc in
                                let dJoint = dJointBuffer.baseAddress!, dMoving = dMovingBuffer.baseAddress!
                                let wf = UnsafeMutablePointer<Double>.allocate(capacity: B), wm = UnsafeMutablePointer<Double>.allocate(capacity: B)
                                let dw = UnsafeMutablePointer<Double>.allocate(capacity: B)
                                defer { wf.deallocate(); wm.deallocate(); dw.deallocate() }
                                let perCount = 1 / state.count
                                for v in range {
                                    let omega = wItem.map { Double($0[v]) } ?? 1
                                    let position = mMap.bin(mItem[v])
                                    // Clamped or masked-out voxels have no derivative (nor one through min/max).
                                    guard omega > 0, position.inside else { o[v] = 0; continue }
                                    // ∂MI/∂t_v = ω/N · Σ_b (E_b + Σ_a wF_a D_ab) · ∂wM_b/∂t.
                                    var dt = 0.0
                                    if kernel.window == .bSpline {
                                        let (af, half) = ParzenKernel.box(fMap.bin(fItem[v]).t)
                                        let (am, _, dwm) = ParzenKernel.cubic(position.t)
                                        let row = dJoint + af * B + am, moving = dMoving + am
                                        for j in 0..<4 {
                                            var c = moving[j] + (1 - half) * row[j]
                                            if half > 0 { c += half * row[B + j] }
                                            dt += c * dwm[j]
                                        }
                                    } else {
                                        let (af, nf) = kernel.weights(fMap.bin(fItem[v]), fixedSide: true, bins: B, into: wf, derivative: nil)
                                        let (am, nm) = kernel.weights(position, fixedSide: false, bins: B, into: wm, derivative: dw)
                                        for j in 0..<nm {
                                            var c = dMoving[am + j]
                                            for i in 0..<nf { c += wf[i] * dJoint[(af + i) * B + am + j] }
                                            dt += c * dw[j]
                                        }
                                    }
                                    dt *= omega * perCount
                                    o[v] = Float(scale * dt * mMap.slope)
                                    if mMap.hasRange {
                                        let r = mMap.relative(mItem[v])
                                        acc[0] += dt * -mMap.slope * (1 - r)
                                        acc[1] += dt * -mMap.slope * r
                                    }
                                }
                            }
                        }
                    }
                    if mMap.hasRange {
                        o[mMap.argmin] += Float(scale * rangeSums[0])
                        o[mMap.argmax] += Float(scale * rangeSums[1])
                    }
                }
            }
            return [nil, grad]
        }
    }

    /// What the backward of one item needs from its forward.
    struct ItemState {
        var fMap: IntensityMap, mMap: IntensityMap
        /// Σ ω.
        var count: Double
        var dJoint: [Double], dMoving: [Double]
    }
}

/// Intensity → bin coordinate of one image (see `MutualInformation.Window`).
struct IntensityMap {
    /// `t = offset + (x − lower)·slope`, clamped to `[low, high]`.
    var lower: Double, slope: Double, offset: Double, low: Double, high: Double
    /// `.bSpline` maps by the data's own min/max, which the gradient then depends on.
    var hasRange: Bool
    var argmin = 0, argmax = 0, upper = 0.0

    struct Position {
        var t: Double
        /// False where the clamp is active (t ≤ low or t ≥ high: no derivative, as `torch.clamp`,
        /// whose gradient is 0 on the bounds too).
        var inside: Bool
    }

    @inline(__always) func bin(_ x: Float) -> Position {
        let t = offset + (Double(x) - lower) * slope
        if t <= low { return Position(t: low, inside: false) }
        if t >= high { return Position(t: high, inside: false) }
        return Position(t: t, inside: true)
    }

    /// `(x − min)/(max − min)`.
    @inline(__always) func relative(_ x: Float) -> Double { (Double(x) - lower) / (upper - lower) }
}

/// The Parzen kernel K and its support, per window.
struct ParzenKernel {
    var window: MutualInformation.Window

    init(_ window: MutualInformation.Window) { self.window = window }

    /// The bin map of `count` intensities (min/max over voxels of positive weight for `.bSpline`).
    func map(_ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>?, count: Int, bins: Int) -> IntensityMap {
        switch window {
        case .gaussian:
            return IntensityMap(lower: 0, slope: Double(bins - 1), offset: 0, low: 0, high: Double(bins - 1), hasRange: false)
        case .bSpline:
            var lo = Float.infinity, hi = -Float.infinity, argmin = 0, argmax = 0
            for v in 0..<count where weights.map({ $0[v] > 0 }) ?? true {
                if x[v] < lo { lo = x[v]; argmin = v }
                if x[v] > hi { hi = x[v]; argmax = v }
            }
            let padding = 2.0
            guard hi > lo else {
                // Constant (or empty): every voxel in the first unpadded bin, no range derivative.
                return IntensityMap(lower: Double(lo.isFinite ? lo : 0), slope: 0, offset: padding, low: padding,
                                    high: Double(bins) - padding - 1, hasRange: false)
            }
            var map = IntensityMap(
                lower: Double(lo), slope: (Double(bins) - 2 * padding) / (Double(hi) - Double(lo)), offset: padding,
                low: padding, high: Double(bins) - padding - 1, hasRange: true)
            map.argmin = argmin
            map.argmax = argmax
            map.upper = Double(hi)
            return map
        }
    }

    /// The normalised window weights `w_b = K(b − t)/Σ_c K(c − t)` of the bins `first ..< first + n`
    /// into `weights[0..<n]` and, when asked, `∂w_b/∂t` into `derivative`. The fixed side of
    /// `.bSpline` is the zero-order (box) window: one bin, or two halves at a half-integer t.
    @inline(__always)
    func weights(
        _ position: IntensityMap.Position, fixedSide: Bool, bins: Int, into weights: UnsafeMutablePointer<Double>, derivative: UnsafeMutablePointer<Double>?
    ) -> (first: Int, n: Int) {
        let t = position.t
        switch window {
        case .bSpline where fixedSide:
            let base = t.rounded(.down)
            if t - base == 0.5 {
                weights[0] = 0.5; weights[1] = 0.5
                return (Int(base), 2)
            }
            weights[0] = 1
            return (Int(t.rounded()), 1)
        case .bSpline:
            // Cubic B-spline β3(d), d = |b − t| < 2: four bins from ⌊t⌋ − 1.
            let first = Int(t.rounded(.down)) - 1
            var sum = 0.0, dsum = 0.0
            for j in 0..<4 {
                let offset = Double(first + j) - t, d = abs(offset)
                var k = 0.0, dk = 0.0   // β3(d) and dβ3/dd
                if d < 1 {
                    k = (4 - 6 * d * d + 3 * d * d * d) / 6
                    dk = -2 * d + 1.5 * d * d
                } else if d < 2 {
                    k = (2 - d) * (2 - d) * (2 - d) / 6
                    dk = -(2 - d) * (2 - d) / 2
                }
                weights[j] = k
                // ∂K/∂t = dβ3/dd · ∂d/∂t, ∂d/∂t = −sign(b − t).
                let dt = offset > 0 ? -dk : (offset < 0 ? dk : 0)
                derivative?[j] = dt
                sum += k
                dsum += dt
            }
            normalise(weights, derivative, n: 4, sum: sum, dsum: dsum)
            return (first, 4)
        case .gaussian(let ratio):
            let c = 1 / (2 * ratio * ratio)
            var sum = 0.0, dsum = 0.0
            for b in 0..<bins {
                let offset = Double(b) - t
                let k = Foundation.exp(-c * offset * offset)
                weights[b] = k
                let dt = 2 * c * offset * k
                derivative?[b] = dt
                sum += k
                dsum += dt
            }
            normalise(weights, derivative, n: bins, sum: sum, dsum: dsum)
            return (0, bins)
        }
    }

    /// The zero-order window of the fixed side of `.bSpline`: the nearest bin, and the weight
    /// (0, or 0.5 at a half-integer t) that goes to the next bin instead.
    @inline(__always)
    static func box(_ t: Double) -> (first: Int, half: Double) {
        let base = t.rounded(.down)
        return t - base == 0.5 ? (Int(base), 0.5) : (Int(t.rounded()), 0)
    }

    /// The cubic B-spline window at t: bins `first ..< first + 4` (first = ⌊t⌋ − 1), their weights
    /// β3(b − t) (summing to 1) and the weights' derivatives with respect to t, in closed form in
    /// u = t − ⌊t⌋ (what `weights` computes bin by bin, without the normalisation by 1).
    @inline(__always)
    static func cubic(_ t: Double) -> (first: Int, weights: SIMD4<Double>, derivatives: SIMD4<Double>) {
        let floor = t.rounded(.down), u = t - floor, v = 1 - u
        let u2 = u * u, v2 = v * v
        let weights = SIMD4(v2 * v / 6, (4 - 6 * u2 + 3 * u2 * u) / 6, (4 - 6 * v2 + 3 * v2 * v) / 6, u2 * u / 6)
        let derivatives = SIMD4(-v2 / 2, -2 * u + 1.5 * u2, 2 * v - 1.5 * v2, u2 / 2)
        return (Int(floor) - 1, weights, derivatives)
    }

    /// w = K/Z and ∂w/∂t = (∂K/∂t − w·∂Z/∂t)/Z in place.
    @inline(__always)
    private func normalise(_ weights: UnsafeMutablePointer<Double>, _ derivative: UnsafeMutablePointer<Double>?, n: Int, sum: Double, dsum: Double) {
        let inv = 1 / sum
        for j in 0..<n {
            weights[j] *= inv
            if let derivative { derivative[j] = (derivative[j] - weights[j] * dsum) * inv }
        }
    }
}
