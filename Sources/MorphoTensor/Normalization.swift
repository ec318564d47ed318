import MorphoKernels

// Instance and batch normalisation over image tensors `[N, C, spatial...]`, with the affine step
// and a (leaky / learned) rectifier fused in: the normalised and pre-activation tensors are
// never stored. The backward keeps only the input and the per-group statistics and recomputes
// x̂ = (x − μ)·σ⁻¹ and z = γ·x̂ + β on the fly, which is cheaper than a round trip through memory.

/// The activation applied right after a normalisation's affine step, y = z for z > 0 and
/// y = s·z otherwise. `.leaky(0)` is ReLU, `.leaky(0.2)` VoxelMorph's LeakyReLU, `.learned(a)`
/// PReLU with one shared, trainable slope `a` (a 1-element tensor, MONAI's default `PReLU()`).
public enum Rectifier {
    case none
    case leaky(Float)
    case learned(Tensor)

    public static var relu: Rectifier { .leaky(0) }
}

/// How the elements of `[N, C, S]` fall into normalisation groups. Every group is `segments`
/// contiguous runs of `length` elements; run k of group g starts at `g·length + k·segmentStride`.
/// Instance norm: one group per (n, c), one run. Batch norm: one group per channel, N runs.
struct NormalizationGroups {
    let groups: Int, segments: Int, length: Int, segmentStride: Int, channels: Int

    static func instance(_ shape: [Int]) -> NormalizationGroups {
        let s = shape.dropFirst(2).reduce(1, *)
        return NormalizationGroups(groups: shape[0] * shape[1], segments: 1, length: s, segmentStride: 0, channels: shape[1])
    }

    static func batch(_ shape: [Int]) -> NormalizationGroups {
        let s = shape.dropFirst(2).reduce(1, *)
        return NormalizationGroups(groups: shape[1], segments: shape[0], length: s, segmentStride: shape[1] * s, channels: shape[1])
    }

    /// Elements per group.
    var size: Int { segments * length }
    func channel(_ g: Int) -> Int { g % channels }
    func start(_ g: Int, _ k: Int) -> Int { g * length + k * segmentStride }
}

/// Per-group mean and 1/√(biased variance + eps) of `x` (two passes: the mean first, then the
/// centred squares, in Float SIMD blocks summed in Double).
func groupStatistics(_ x: UnsafePointer<Float>, _ layout: NormalizationGroups, eps: Float) -> (mean: [Float], variance: [Float], invStd: [Float]) {
    var mean = [Float](repeating: 0, count: layout.groups)
    var variance = [Float](repeating: 0, count: layout.groups)
    mean.withUnsafeMutableBufferPointer { m in
        variance.withUnsafeMutableBufferPointer { v in
            let pm = m.baseAddress!, pv = v.baseAddress!
            Parallel.forEach(layout.groups) { g in
                var sum = 0.0
                for k in 0..<layout.segments { sum += Double(blockSum(x + layout.start(g, k), layout.length, shift: 0, square: false)) }
                let mu = Float(sum / Double(layout.size))
                var sq = 0.0
                for k in 0..<layout.segments { sq += Double(blockSum(x + layout.start(g, k), layout.length, shift: mu, square: true)) }
                pm[g] = mu
                pv[g] = Float(sq / Double(layout.size))
            }
        }
    }
    return (mean, variance, variance.map { 1 / ($0 + eps).squareRoot() })
}

/// Σ (x − shift) or Σ (x − shift)² over a contiguous run, 16 lanes at a time.
@inline(__always)
func blockSum(_ p: UnsafePointer<Float>, _ n: Int, shift: Float, square: Bool) -> Float {
    var acc = SIMD16<Float>()
    let s = SIMD16<Float>(repeating: shift)
    var i = 0
    while i + 16 <= n {
        let d = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self) - s
        acc = square ? acc.addingProduct(d, d) : acc + d
        i += 16
    }
    var tail: Float = 0
    while i < n { let d = p[i] - shift; tail += square ? d * d : d; i += 1 }
    return acc.sum() + tail
}

/// y = rectify(γ_c·(x − μ_g)·σ_g⁻¹ + β_c) for every group, and its backward. With
/// `constantStatistics` (batch norm in eval mode) μ and σ are treated as constants; otherwise
/// they are functions of x and the backward is the usual
/// dx = σ⁻¹·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) over the group.
func normalize(_ x: Tensor, _ layout: NormalizationGroups, mean: [Float], invStd: [Float], constantStatistics: Bool,
               weight: Tensor?, bias: Tensor?, rectifier: Rectifier) -> Tensor {
    let c = layout.channels
    precondition(weight.map { $0.count == c } ?? true, "normalisation weight \(weight!.shape) for \(c) channels")
    precondition(bias.map { $0.count == c } ?? true, "normalisation bias \(bias!.shape) for \(c) channels")
    var learnedSlope: Tensor?
    var slope: Float = 1
    switch rectifier {
    case .none: slope = 1
    case .leaky(let s): slope = s
    case .learned(let a):
        precondition(a.count == 1, "a learned rectifier slope has one element, not \(a.shape)")
        learnedSlope = a
        slope = a.item
    }
    let gamma = weight.map { $0.scalars } ?? [Float](repeating: 1, count: c)
    let beta = bias.map { $0.scalars } ?? [Float](repeating: 0, count: c)
    let px = x.storage.pointer

    let y = Tensor(shape: x.shape) { out in
        Parallel.forEach(layout.groups) { g in
            let ch = layout.channel(g)
            // z = a·x + b with a = γ·σ⁻¹ and b = β − a·μ: one FMA per element.
            let a = gamma[ch] * invStd[g], b = beta[ch] - gamma[ch] * invStd[g] * mean[g]
            let va = SIMD16<Float>(repeating: a), vb = SIMD16<Float>(repeating: b), vs = SIMD16<Float>(repeating: slope)
            for k in 0..<layout.segments {
                let o = layout.start(g, k)
                let src = px + o, dst = out + o
                var i = 0
                while i + 16 <= layout.length {
                    let z = vb.addingProduct(va, UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float>.self))
                    UnsafeMutableRawPointer(dst + i).storeBytes(of: z.replacing(with: z * vs, where: z .<= 0), as: SIMD16<Float>.self)
                    i += 16
                }
                while i < layout.length {
                    let z = a * src[i] + b
                    dst[i] = z > 0 ? z : slope * z
                    i += 1
                }
            }
        }
    }

    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    if let learnedSlope { inputs.append(learnedSlope) }
    let hasWeight = weight != nil, hasBias = bias != nil
    return Tensor.record(y, inputs: inputs) { grad in
        let pg = grad.storage.pointer
        // Pass 1, per group: Σ dz, Σ dz·x̂ and (PReLU) Σ g·min(z, 0), where dz = g·rectify'(z).
        var sums = [Float](repeating: 0, count: 3 * layout.groups)
        sums.withUnsafeMutableBufferPointer { sb in
            let ps = sb.baseAddress!
            Parallel.forEach(layout.groups) { g in
                let ch = layout.channel(g)
                let mu = SIMD16<Float>(repeating: mean[g]), inv = SIMD16<Float>(repeating: invStd[g])
                let vg = SIMD16<Float>(repeating: gamma[ch]), vb = SIMD16<Float>(repeating: beta[ch]), vs = SIMD16<Float>(repeating: slope)
                var sdz = SIMD16<Float>(), sdzx = SIMD16<Float>(), sneg = SIMD16<Float>()
                var tdz: Float = 0, tdzx: Float = 0, tneg: Float = 0
                for k in 0..<layout.segments {
                    let o = layout.start(g, k)
                    let src = px + o, gr = pg + o
                    var i = 0
                    while i + 16 <= layout.length {
                        let xh = (UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float>.self) - mu) * inv
                        let z = vb.addingProduct(vg, xh)
                        let gv = UnsafeRawPointer(gr + i).loadUnaligned(as: SIMD16<Float>.self)
                        let neg = z .<= 0
                        let dz = gv.replacing(with: gv * vs, where: neg)
                        sdz += dz
                        sdzx = sdzx.addingProduct(dz, xh)
                        sneg = sneg.addingProduct(gv, z.replacing(with: 0, where: .!neg))
                        i += 16
                    }
                    while i < layout.length {
                        let xh = (src[i] - mean[g]) * invStd[g]
                        let z = gamma[ch] * xh + beta[ch]
                        let dz = z > 0 ? gr[i] : gr[i] * slope
                        tdz += dz
                        tdzx += dz * xh
                        if z <= 0 { tneg += gr[i] * z }
                        i += 1
                    }
                }
                ps[3 * g] = sdz.sum() + tdz
                ps[3 * g + 1] = sdzx.sum() + tdzx
                ps[3 * g + 2] = sneg.sum() + tneg
            }
        }

        var dx: Tensor?
        if x.requiresGrad {
            dx = Tensor(shape: x.shape) { out in
                Parallel.forEach(layout.groups) { g in
                    let ch = layout.channel(g)
                    let m = Float(layout.size)
                    // dx = σ⁻¹·γ·(dz − Σdz/M − x̂·Σ(dz·x̂)/M); the two means vanish for constant statistics.
                    let meanDz = constantStatistics ? 0 : sums[3 * g] / m
                    let meanDzX = constantStatistics ? 0 : sums[3 * g + 1] / m
                    let scale = gamma[ch] * invStd[g]
                    let mu = SIMD16<Float>(repeating: mean[g]), inv = SIMD16<Float>(repeating: invStd[g])
                    let vg = SIMD16<Float>(repeating: gamma[ch]), vb = SIMD16<Float>(repeating: beta[ch]), vs = SIMD16<Float>(repeating: slope)
                    let vmd = SIMD16<Float>(repeating: meanDz), vmx = SIMD16<Float>(repeating: meanDzX), vsc = SIMD16<Float>(repeating: scale)
                    for k in 0..<layout.segments {
                        let o = layout.start(g, k)
                        let src = px + o, gr = pg + o, dst = out + o
                        var i = 0
                        while i + 16 <= layout.length {
                            let xh = (UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float>.self) - mu) * inv
                            let z = vb.addingProduct(vg, xh)
                            let gv = UnsafeRawPointer(gr + i).loadUnaligned(as: SIMD16<Float>.self)
                            let dz = gv.replacing(with: gv * vs, where: z .<= 0)
                            let r = (dz - vmd) - xh * vmx
                            UnsafeMutableRawPointer(dst + i).storeBytes(of: r * vsc, as: SIMD16<Float>.self)
                            i += 16
                        }
                        while i < layout.length {
                            let xh = (src[i] - mean[g]) * invStd[g]
                            let z = gamma[ch] * xh + beta[ch]
                            let dz = z > 0 ? gr[i] : gr[i] * slope
                            dst[i] = scale * (dz - meanDz - xh * meanDzX)
                            i += 1
                        }
                    }
                }
            }
        }
        // Parameter gradients: dγ_c = Σ dz·x̂, dβ_c = Σ dz over the groups of channel c.
        var dGamma = [Double](repeating: 0, count: c), dBeta = [Double](repeating: 0, count: c)
        var dSlope = 0.0
        for g in 0..<layout.groups {
            dGamma[layout.channel(g)] += Double(sums[3 * g + 1])
            dBeta[layout.channel(g)] += Double(sums[3 * g])
            dSlope += Double(sums[3 * g + 2])
        }
        var grads: [Tensor?] = [dx]
        if hasWeight { grads.append(Tensor(shape: weight!.shape, data: dGamma.map { Float($0) })) }
        if hasBias { grads.append(Tensor(shape: bias!.shape, data: dBeta.map { Float($0) })) }
        if let learnedSlope { grads.append(Tensor(shape: learnedSlope.shape, data: [Float(dSlope)])) }
        return grads
    }
}

/// Instance normalisation (Ulyanov et al. 2016; MONAI's default `Norm.INSTANCE`): every sample
/// and channel of `x` `[N, C, spatial...]` is normalised over its spatial extent with the
/// biased variance, y = rectify(γ_c·(x − μ)/√(σ² + eps) + β_c). `weight` γ and `bias` β are
/// `[C]` (nil: 1 and 0, PyTorch's `affine=False`). A constant plane gives 0 (then β_c).
/// Differentiable with respect to x, γ, β and a learned rectifier slope.
public func instanceNorm(_ x: Tensor, weight: Tensor? = nil, bias: Tensor? = nil, eps: Float = 1e-5,
                         rectifier: Rectifier = .none) -> Tensor {
    precondition(x.rank >= 3, "instanceNorm expects [N, C, spatial...], got \(x.shape)")
    let layout = NormalizationGroups.instance(x.shape)
    let stats = groupStatistics(x.storage.pointer, layout, eps: eps)
    return normalize(x, layout, mean: stats.mean, invStd: stats.invStd, constantStatistics: false,
                     weight: weight, bias: bias, rectifier: rectifier)
}

/// Batch normalisation (Ioffe & Szegedy 2015) of `x` `[N, C, spatial...]` per channel over the
/// batch and space. Training: the batch statistics normalise (biased variance) and the running
/// estimates move as PyTorch's, r ← (1 − momentum)·r + momentum·batch (unbiased variance for
/// `runningVar`). Eval: the running estimates normalise and are constants of the graph.
/// `runningMean`/`runningVar` are `[C]`; `weight`/`bias` `[C]` or nil. The rectifier is fused.
public func batchNorm(_ x: Tensor, weight: Tensor? = nil, bias: Tensor? = nil,
                      runningMean: inout Tensor, runningVar: inout Tensor, training: Bool,
                      momentum: Float = 0.1, eps: Float = 1e-5, rectifier: Rectifier = .none) -> Tensor {
    precondition(x.rank >= 2, "batchNorm expects [N, C, spatial...], got \(x.shape)")
    let layout = NormalizationGroups.batch(x.shape)
    precondition(runningMean.count == layout.channels && runningVar.count == layout.channels,
                 "running statistics \(runningMean.shape), \(runningVar.shape) for \(layout.channels) channels")
    if training {
        precondition(layout.size > 1, "batchNorm in training needs more than one value per channel, got \(x.shape)")
        let stats = groupStatistics(x.storage.pointer, layout, eps: eps)
        let unbias = Float(layout.size) / Float(layout.size - 1)
        runningMean.withUnsafeMutablePointer { m in
            for c in 0..<layout.channels { m[c] = (1 - momentum) * m[c] + momentum * stats.mean[c] }
        }
        runningVar.withUnsafeMutablePointer { v in
            for c in 0..<layout.channels { v[c] = (1 - momentum) * v[c] + momentum * stats.variance[c] * unbias }
        }
        return normalize(x, layout, mean: stats.mean, invStd: stats.invStd, constantStatistics: false,
                         weight: weight, bias: bias, rectifier: rectifier)
    }
    let invStd = runningVar.scalars.map { 1 / ($0 + eps).squareRoot() }
    return normalize(x, layout, mean: runningMean.scalars, invStd: invStd, constantStatistics: true,
                     weight: weight, bias: bias, rectifier: rectifier)
}
