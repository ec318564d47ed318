import MorphoKernels
import MorphoTensor

// PRL as one recorded operation: the forward keeps the fields its derivative needs and the
// backward applies the adjoint of each step by hand. Every Sobel gradient (all components and,
// where needed, their sum of squares) is one sweep of `sobelGradient`, every flux divergence
// one sweep of `sobelDivergence` (MorphoKernels/SobelFields.swift), so a 3D image costs 4
// gradient and 2 divergence sweeps plus 2 Gaussians forward, and 2 + 3 and 2 backward, instead
// of ~40 autograd nodes (`PhysicalRegularizationLoss.composed` is that version, kept as the
// reference the tests compare with).
//
// The Sobel S_a here is the un-negated one of every axis: the seed's negated 2D y Sobel enters
// each quantity twice (a gradient then a divergence) or squared, so the sign cancels.
//
// Forward of one image u (Gaussians G_σ, G_ρ, φ = `EdgeStopOfNorm`, div(x, g) = Σ_a S_a(g·x_a)):
//   s = G_σ u,  d = ∇s,  q = Σ_a d_a²,  T = G_ρ q,  g_I = φ(T),  g_J = φ(q)
//   e = ∇u,  f = ∇T,  div_I = div(e, g_I),  div_J = div(f, g_J)
// Backward from r_I = ∂L/∂div_I and r_J = ∂L/∂div_J. A Sobel's adjoint is its negation
// (antisymmetric derivative taps, symmetric smoothing taps), so with h = ∇r_I and k = ∇r_J:
//   ∂g_I = −Σ_a e_a h_a,  ∂g_J = −Σ_a f_a k_a
//   ∂T = div(k, g_J) + φ'(T) ∂g_I,   ∂q = G_ρᵀ ∂T + φ'(q) ∂g_J
//   ∂u = div(h, g_I) − 2 G_σᵀ div(d, ∂q)

extension PhysicalRegularizationLoss {
    /// The fields of one image's forward pass (all `[N, 1, spatial…]`; `d`, `e`, `f` one per axis).
    struct Fields {
        var d: [Tensor] = []
        var q = Tensor(scalar: 0), T = Tensor(scalar: 0), gI = Tensor(scalar: 0), gJ = Tensor(scalar: 0)
        var e: [Tensor] = [], f: [Tensor] = []
        var divI = Tensor(scalar: 0), divJ = Tensor(scalar: 0)
    }

    /// `mean((div_I(p) − div_I(t))²) + mean((div_J(p) − div_J(t))²)` with its exact gradient
    /// with respect to the prediction, from the target's divergences `(div_I(t), div_J(t))`.
    func fused(prediction: Tensor, targetDivI: Tensor, targetDivJ: Tensor) -> Tensor {
        // The fields are values only: no autograd nodes behind them. The backward keeps the
        // prediction's fields except its divergences, and of the target only the residuals.
        let count = prediction.count
        let (p, rI, rJ, value) = withoutGradients {
            var p = fields(prediction)
            let (rI, sumI) = residual(p.divI, targetDivI), (rJ, sumJ) = residual(p.divJ, targetDivJ)
            (p.divI, p.divJ) = (Tensor(scalar: 0), Tensor(scalar: 0))
            return (p, rI, rJ, Float((sumI + sumJ) / Double(max(count, 1))))
        }
        return Tensor.record(Tensor(scalar: value), inputs: [prediction]) { g in
            let scale = 2 * g.item / Float(max(count, 1))
            return withoutGradients { [gradient(p, rI: rI * scale, rJ: rJ * scale)] }
        }
    }

    /// φ is chosen once here: the closed form at p = 2, else the general power.
    func fields(_ u: Tensor) -> Fields {
        p == 2 ? fields(u, SquareEdgeStopOfNorm(K: K)) : fields(u, EdgeStopOfNorm(K: K, p: p))
    }

    func gradient(_ x: Fields, rI: Tensor, rJ: Tensor) -> Tensor {
        p == 2 ? gradient(x, rI: rI, rJ: rJ, SquareEdgeStopOfNorm(K: K)) : gradient(x, rI: rI, rJ: rJ, EdgeStopOfNorm(K: K, p: p))
    }

    private func fields<Phi: UnaryFunction>(_ u: Tensor, _ phi: Phi) -> Fields {
        let rank = u.spatialRank
        var x = Fields()
        let s = u.correlated(with: .gaussian(sigma: sigma, rank: rank))
        (x.d, x.q) = sobelGradientAndSquares(s)
        x.T = x.q.correlated(with: .gaussian(sigma: rho, rank: rank))
        (x.gI, x.gJ) = edgeStops(x.T, x.q, phi)
        x.e = sobelGradient(u)
        x.f = sobelGradient(x.T)
        x.divI = sobelDivergence(x.e, weight: x.gI)
        x.divJ = sobelDivergence(x.f, weight: x.gJ)
        return x
    }

    private func gradient<Phi: UnaryFunction>(_ x: Fields, rI: Tensor, rJ: Tensor, _ phi: Phi) -> Tensor {
        let rank = rI.spatialRank
        let h = sobelGradient(rI), k = sobelGradient(rJ)
        let gradT = adding(sobelDivergence(k, weight: x.gJ), derivativeOf: phi, at: x.T, value: x.gI, timesMinusSumOf: x.e, h)
        let gradQ = adding(
            gradT.correlated(with: SeparableKernel.gaussian(sigma: rho, rank: rank).adjoint),
            derivativeOf: phi, at: x.q, value: x.gJ, timesMinusSumOf: x.f, k)
        let smoothed = sobelDivergence(x.d, weight: gradQ).correlated(with: SeparableKernel.gaussian(sigma: sigma, rank: rank).adjoint)
        return sobelDivergence(h, weight: x.gI).subtracting(smoothed, scaledBy: 2)
    }
}

/// (planes, extent) of a `[N, 1, spatial…]` image for the plane-wise kernels.
private func layout(_ u: Tensor) -> (Int, SpatialExtent) { (u.shape[0] * u.shape[1], SpatialExtent(u.spatialShape)) }

private func uninitialized(like u: Tensor) -> Tensor { Tensor(shape: u.shape, storage: TensorStorage(uninitializedCount: u.count)) }

/// `[S_a ⋆ u]_a`, one tensor per spatial axis (values only).
func sobelGradient(_ u: Tensor) -> [Tensor] { sobelGradient(u, squares: false).components }

/// `([S_a ⋆ u]_a, Σ_a (S_a ⋆ u)²)` in one sweep (values only).
func sobelGradientAndSquares(_ u: Tensor) -> ([Tensor], Tensor) {
    let (components, squares) = sobelGradient(u, squares: true)
    return (components, squares!)
}

private func sobelGradient(_ u: Tensor, squares: Bool) -> (components: [Tensor], squares: Tensor?) {
    let (planes, extent) = layout(u)
    let outs = (0..<extent.rank).map { _ in uninitialized(like: u) }
    let sum = squares ? uninitialized(like: u) : nil
    MorphoKernels.sobelGradient(
        u.storage.pointer, into: outs.map(\.storage.pointer), sumOfSquares: sum?.storage.pointer, planes: planes, extent: extent)
    return (outs, sum)
}

/// `Σ_a S_a ⋆ (g · fields[a])` (values only).
func sobelDivergence(_ fields: [Tensor], weight g: Tensor) -> Tensor {
    let (planes, extent) = layout(g)
    let out = uninitialized(like: g)
    MorphoKernels.sobelDivergence(
        fields.map { UnsafePointer($0.storage.pointer) }, weight: g.storage.pointer, into: out.storage.pointer, planes: planes,
        extent: extent)
    return out
}

extension Tensor {
    /// `self − scale · other` elementwise in one pass (values only).
    fileprivate func subtracting(_ other: Tensor, scaledBy scale: Float) -> Tensor {
        let pa = storage.pointer, pb = other.storage.pointer
        return Tensor(shape: shape) { out in
            Parallel.forRanges(count) { r in for i in r { out[i] = pa[i] - scale * pb[i] } }
        }
    }
}

/// `(a − b, Σ (a − b)²)` in one pass (values only): a PRL residual and its squared norm.
private func residual(_ a: Tensor, _ b: Tensor) -> (Tensor, Double) {
    let out = uninitialized(like: a)
    let pa = a.storage.pointer, pb = b.storage.pointer, po = out.storage.pointer
    let sums = blockSums(items: 1, spatial: a.count, width: 1, block: 16384) { _, range, acc in
        var s: Float = 0
        for v in range { let d = pa[v] - pb[v]; po[v] = d; s = s.addingProduct(d, d) }
        acc[0] = Double(s)
    }
    return (out, sums[0])
}

/// `(φ(T), φ(q))` (g_I and g_J) in one pass (values only).
private func edgeStops<Phi: UnaryFunction>(_ T: Tensor, _ q: Tensor, _ phi: Phi) -> (Tensor, Tensor) {
    let gI = uninitialized(like: T), gJ = uninitialized(like: q)
    let pt = T.storage.pointer, pq = q.storage.pointer, oi = gI.storage.pointer, oj = gJ.storage.pointer
    Parallel.forRanges(T.count) { r in for i in r { oi[i] = phi.value(pt[i]); oj[i] = phi.value(pq[i]) } }
    return (gI, gJ)
}

/// `base − f'(x) · Σ_a xs[a]·ys[a]` elementwise in one pass, with `f(x)` given as `value`.
func adding<Phi: UnaryFunction>(
    _ base: Tensor, derivativeOf f: Phi, at x: Tensor, value: Tensor, timesMinusSumOf xs: [Tensor], _ ys: [Tensor]
) -> Tensor {
    let pb = base.storage.pointer, px = x.storage.pointer, py = value.storage.pointer
    // Rank 2 or 3 axes, as plain pointers: no array access per element; the rank is tested once,
    // outside the loops (inside, it kept the loop scalar).
    let (x0, y0, x1, y1) = (xs[0].storage.pointer, ys[0].storage.pointer, xs[1].storage.pointer, ys[1].storage.pointer)
    return Tensor(shape: base.shape) { out in
        if xs.count > 2 {
            let x2 = xs[2].storage.pointer, y2 = ys[2].storage.pointer
            Parallel.forRanges(x.count) { r in
                for i in r {
                    let s = (x0[i] * y0[i]).addingProduct(x1[i], y1[i]).addingProduct(x2[i], y2[i])
                    out[i] = pb[i] - f.derivative(x: px[i], y: py[i]) * s
                }
            }
        } else {
            Parallel.forRanges(x.count) { r in
                for i in r { out[i] = pb[i] - f.derivative(x: px[i], y: py[i]) * (x0[i] * y0[i]).addingProduct(x1[i], y1[i]) }
            }
        }
    }
}
