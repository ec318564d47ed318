import MorphoKernels
import MorphoTensor

// PRL as one recorded operation: the forward keeps the fields its derivative needs and the
// backward applies the adjoint of each step by hand, so a 3D image costs 17 filter passes each
// way and a handful of fused elementwise loops, instead of ~40 autograd nodes each allocating,
// filling and later reading a volume (`PhysicalRegularizationLoss.composed` is that version,
// kept as the reference the tests compare with).
//
// Forward of one image u (Sobel S_a, Gaussians G_σ, G_ρ, φ = `EdgeStopOfNorm`):
//   s = G_σ u,  d_a = S_a s,  q = Σ_a d_a²,  T = G_ρ q,  g_I = φ(T),  g_J = φ(q)
//   e_a = S_a u,  f_a = S_a T,  div_I = Σ_a S_a(g_I e_a),  div_J = Σ_a S_a(g_J f_a)
// Backward from r_I = ∂L/∂div_I and r_J = ∂L/∂div_J (Sᵀ: the adjoint, taps reversed):
//   h_a = S_aᵀ r_I,  k_a = S_aᵀ r_J
//   ∂g_I = Σ_a e_a h_a,  ∂g_J = Σ_a f_a k_a
//   ∂u  = Σ_a S_aᵀ(g_I h_a) + G_σᵀ Σ_a S_aᵀ(2 d_a ∂q)
//   ∂T  = Σ_a S_aᵀ(g_J k_a) + φ'(T) ∂g_I,   ∂q = φ'(q) ∂g_J + G_ρᵀ ∂T

extension PhysicalRegularizationLoss {
    /// The fields of one image's forward pass (all `[N, 1, spatial…]`).
    struct Fields {
        var d: [Tensor] = []
        var q = Tensor(scalar: 0), T = Tensor(scalar: 0), gI = Tensor(scalar: 0), gJ = Tensor(scalar: 0)
        var e: [Tensor] = [], f: [Tensor] = []
        var divI = Tensor(scalar: 0), divJ = Tensor(scalar: 0)
    }

    /// `mean((div_I(p) − div_I(t))²) + mean((div_J(p) − div_J(t))²)` with its exact gradient
    /// with respect to the prediction.
    func fused(prediction: Tensor, target: Tensor) -> Tensor {
        // The fields are values only: no autograd nodes behind them. The backward keeps the
        // prediction's fields except its divergences, and of the target's only the residuals.
        let (p, rI, rJ, value) = withoutGradients {
            var p = fields(prediction)
            let t = fields(target)
            let mse = MeanSquaredError()
            let value = mse(p.divI, t.divI).item + mse(p.divJ, t.divJ).item
            let residuals = (p.divI - t.divI, p.divJ - t.divJ)
            (p.divI, p.divJ) = (Tensor(scalar: 0), Tensor(scalar: 0))
            return (p, residuals.0, residuals.1, value)
        }
        let count = prediction.count
        return Tensor.record(Tensor(scalar: value), inputs: [prediction]) { g in
            let scale = 2 * g.item / Float(max(count, 1))
            return withoutGradients { [gradient(p, rI: rI * scale, rJ: rJ * scale, rank: prediction.spatialRank)] }
        }
    }

    func fields(_ u: Tensor) -> Fields {
        let sobels = sobelKernels(rank: u.spatialRank)
        let gaussian = SeparableKernel.gaussian(sigma: sigma, rank: u.spatialRank)
        let rhoGaussian = SeparableKernel.gaussian(sigma: rho, rank: u.spatialRank)
        let phi = EdgeStopOfNorm(K: K, p: p)
        var x = Fields()
        let s = u.correlated(with: gaussian)
        x.d = sobels.map { s.correlated(with: $0) }
        x.q = sumOfProducts(x.d, x.d)
        x.T = x.q.correlated(with: rhoGaussian)
        x.gI = x.T.map(phi)
        x.gJ = x.q.map(phi)
        x.e = sobels.map { u.correlated(with: $0) }
        x.f = sobels.map { x.T.correlated(with: $0) }
        x.divI = sumOfCorrelated(x.e.map { x.gI * $0 }, sobels)
        x.divJ = sumOfCorrelated(x.f.map { x.gJ * $0 }, sobels)
        return x
    }

    func gradient(_ x: Fields, rI: Tensor, rJ: Tensor, rank: Int) -> Tensor {
        let adjoints = sobelKernels(rank: rank).map(\.adjoint)
        let gaussian = SeparableKernel.gaussian(sigma: sigma, rank: rank).adjoint
        let rhoGaussian = SeparableKernel.gaussian(sigma: rho, rank: rank).adjoint
        let phi = EdgeStopOfNorm(K: K, p: p)
        let h = adjoints.map { rI.correlated(with: $0) }
        let k = adjoints.map { rJ.correlated(with: $0) }
        let gradGI = sumOfProducts(x.e, h), gradGJ = sumOfProducts(x.f, k)
        // ∂T = Σ_a S_aᵀ(g_J k_a) + φ'(T)·∂g_I, then ∂q = φ'(q)·∂g_J + G_ρᵀ ∂T.
        let gradT = adding(sumOfCorrelated(k.map { x.gJ * $0 }, adjoints), derivativeOf: phi, at: x.T, value: x.gI, times: gradGI)
        let gradQ = adding(gradT.correlated(with: rhoGaussian), derivativeOf: phi, at: x.q, value: x.gJ, times: gradGJ)
        // ∂u = Σ_a S_aᵀ(g_I h_a) + G_σᵀ Σ_a S_aᵀ(2 d_a ∂q).
        let gradS = sumOfCorrelated(x.d.map { $0 * gradQ * 2 }, adjoints)
        return sumOfCorrelated(h.map { x.gI * $0 }, adjoints) + gradS.correlated(with: gaussian)
    }
}

/// `Σ_a xs[a] ⋆ kernels[a]` (zero padding, same size).
func sumOfCorrelated(_ xs: [Tensor], _ kernels: [SeparableKernel]) -> Tensor {
    var total = xs[0].correlated(with: kernels[0])
    for a in 1..<xs.count { total = total + xs[a].correlated(with: kernels[a]) }
    return total
}

/// `Σ_a xs[a] · ys[a]` elementwise.
func sumOfProducts(_ xs: [Tensor], _ ys: [Tensor]) -> Tensor {
    let px = xs.map { $0.storage.pointer }, py = ys.map { $0.storage.pointer }
    return Tensor(shape: xs[0].shape) { out in
        Parallel.forRanges(xs[0].count) { r in
            for i in r {
                var s: Float = 0
                for a in 0..<px.count { s += px[a][i] * py[a][i] }
                out[i] = s
            }
        }
    }
}

/// `base + f'(x) · g` elementwise, with `f(x)` given as `value` (one pass).
func adding(_ base: Tensor, derivativeOf f: EdgeStopOfNorm, at x: Tensor, value: Tensor, times g: Tensor) -> Tensor {
    let pb = base.storage.pointer, px = x.storage.pointer, py = value.storage.pointer, pg = g.storage.pointer
    return Tensor(shape: base.shape) { out in
        Parallel.forRanges(x.count) { r in for i in r { out[i] = pb[i] + f.derivative(x: px[i], y: py[i]) * pg[i] } }
    }
}
