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
        let layout = PlaneLayout(prediction)
        let p = fields(prediction, layout), t = fields(target, layout)
        let count = prediction.count
        let (dI, dJ) = (difference(p.divI, t.divI), difference(p.divJ, t.divJ))
        let value = (sumOfSquares(dI) + sumOfSquares(dJ)) / Double(max(count, 1))
        return Tensor.record(Tensor(scalar: Float(value)), inputs: [prediction]) { g in
            let scale = 2 * g.item / Float(max(count, 1))
            return [gradient(p, rI: scaled(dI, scale), rJ: scaled(dJ, scale), u: prediction, layout)]
        }
    }

    func fields(_ u: Tensor, _ layout: PlaneLayout) -> Fields {
        let sobels = sobelKernels(rank: u.spatialRank)
        let gaussian = SeparableKernel.gaussian(sigma: sigma, rank: u.spatialRank)
        let rhoGaussian = SeparableKernel.gaussian(sigma: rho, rank: u.spatialRank)
        let phi = EdgeStopOfNorm(K: K, p: p)
        var x = Fields()
        let s = layout.filter(u, gaussian)
        x.d = sobels.map { layout.filter(s, $0) }
        x.q = Tensor(shape: u.shape) { out in
            let parts = x.d.map { $0.storage.pointer }
            Parallel.forRanges(u.count) { r in
                for i in r {
                    var sum: Float = 0
                    for part in parts { sum += part[i] * part[i] }
                    out[i] = sum
                }
            }
        }
        x.T = layout.filter(x.q, rhoGaussian)
        x.gI = elementwise(x.T) { phi.value($0) }
        x.gJ = elementwise(x.q) { phi.value($0) }
        x.e = sobels.map { layout.filter(u, $0) }
        x.f = sobels.map { layout.filter(x.T, $0) }
        x.divI = layout.sumOfFiltered(x.e.map { product(x.gI, $0) }, sobels)
        x.divJ = layout.sumOfFiltered(x.f.map { product(x.gJ, $0) }, sobels)
        return x
    }

    func gradient(_ x: Fields, rI: Tensor, rJ: Tensor, u: Tensor, _ layout: PlaneLayout) -> Tensor {
        let adjoints = sobelKernels(rank: u.spatialRank).map(\.adjoint)
        let gaussian = SeparableKernel.gaussian(sigma: sigma, rank: u.spatialRank).adjoint
        let rhoGaussian = SeparableKernel.gaussian(sigma: rho, rank: u.spatialRank).adjoint
        let phi = EdgeStopOfNorm(K: K, p: p)
        let h = adjoints.map { layout.filter(rI, $0) }
        let k = adjoints.map { layout.filter(rJ, $0) }
        let gradGI = sumOfProducts(x.e, h), gradGJ = sumOfProducts(x.f, k)
        // ∂T = Σ_a S_aᵀ(g_J k_a) + φ'(T)·∂g_I, then ∂q = φ'(q)·∂g_J + G_ρᵀ ∂T.
        let gradT = layout.sumOfFiltered(k.map { product(x.gJ, $0) }, adjoints)
        addDerivative(of: phi, at: x.T, value: x.gI, times: gradGI, into: gradT)
        let gradQ = layout.filter(gradT, rhoGaussian)
        addDerivative(of: phi, at: x.q, value: x.gJ, times: gradGJ, into: gradQ)
        // ∂u = Σ_a S_aᵀ(g_I h_a) + G_σᵀ Σ_a S_aᵀ(2 d_a ∂q).
        let gradS = layout.sumOfFiltered(x.d.map { scaled(product($0, gradQ), 2) }, adjoints)
        let gradU = layout.sumOfFiltered(h.map { product(x.gI, $0) }, adjoints)
        let smoothPart = layout.filter(gradS, gaussian)
        add(smoothPart, into: gradU)
        return gradU
    }
}

/// Planes and extent of a `[N, C, spatial…]` image for the plane-wise filters.
struct PlaneLayout {
    let planes: Int
    let extent: SpatialExtent

    init(_ image: Tensor) {
        planes = image.shape[0] * image.shape[1]
        extent = SpatialExtent(image.spatialShape)
    }

    /// `x ⋆ kernel` per plane, zero padding, same size (no autograd).
    func filter(_ x: Tensor, _ kernel: SeparableKernel) -> Tensor {
        Tensor(shape: x.shape) { out in
            separableCorrelate(x.storage.pointer, into: out, planes: planes, extent: extent, kernel: kernel)
        }
    }

    /// `Σ_a xs[a] ⋆ kernels[a]`.
    func sumOfFiltered(_ xs: [Tensor], _ kernels: [SeparableKernel]) -> Tensor {
        let total = filter(xs[0], kernels[0])
        for a in 1..<xs.count { add(filter(xs[a], kernels[a]), into: total) }
        return total
    }
}

/// `f(x)` elementwise (no autograd).
@inline(__always)
func elementwise(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
    let px = x.storage.pointer
    return Tensor(shape: x.shape) { out in
        Parallel.forRanges(x.count) { r in for i in r { out[i] = f(px[i]) } }
    }
}

func product(_ a: Tensor, _ b: Tensor) -> Tensor {
    let pa = a.storage.pointer, pb = b.storage.pointer
    return Tensor(shape: a.shape) { out in Parallel.forRanges(a.count) { r in for i in r { out[i] = pa[i] * pb[i] } } }
}

func difference(_ a: Tensor, _ b: Tensor) -> Tensor {
    let pa = a.storage.pointer, pb = b.storage.pointer
    return Tensor(shape: a.shape) { out in Parallel.forRanges(a.count) { r in for i in r { out[i] = pa[i] - pb[i] } } }
}

func scaled(_ a: Tensor, _ s: Float) -> Tensor {
    let pa = a.storage.pointer
    return Tensor(shape: a.shape) { out in Parallel.forRanges(a.count) { r in for i in r { out[i] = s * pa[i] } } }
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

/// `into += x` (the tensor's storage is written in place: `into` must be a fresh, unshared result).
func add(_ x: Tensor, into: Tensor) {
    let px = x.storage.pointer, po = into.storage.pointer
    Parallel.forRanges(x.count) { r in for i in r { po[i] += px[i] } }
}

/// `into += f'(x) · g`, with `f(x)` given as `value`.
func addDerivative(of f: EdgeStopOfNorm, at x: Tensor, value: Tensor, times g: Tensor, into: Tensor) {
    let px = x.storage.pointer, py = value.storage.pointer, pg = g.storage.pointer, po = into.storage.pointer
    Parallel.forRanges(x.count) { r in for i in r { po[i] += f.derivative(x: px[i], y: py[i]) * pg[i] } }
}

/// Σ x² in double precision.
func sumOfSquares(_ x: Tensor) -> Double {
    let px = x.storage.pointer
    let sums = blockSums(items: 1, spatial: x.count, width: 1, block: 16384) { _, range, acc in
        var s: Float = 0
        for v in range { s += px[v] * px[v] }
        acc[0] = Double(s)
    }
    return sums[0]
}
