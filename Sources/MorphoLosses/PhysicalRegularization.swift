import Foundation
import MorphoKernels
import MorphoTensor

/// Physical Regularisation Loss (seed 000 `PMLoss`: "Physical Regularization Loss: Integrating
/// Physical Knowledge to Image Segmentation"): compares the Perona–Malik anisotropic-diffusion
/// fluxes of the prediction and of the target. For an image u (prediction or target):
///
///     u_σ   = G_σ ∗ u                                   (Gaussian smoothing, Eq. 7)
///     J_aa  = (S_a u_σ)²,  J_aa,ρ = G_ρ ∗ J_aa          (structure tensor diagonal, Eq. 9)
///     g_I   = g(√(Σ_a J_aa,ρ + 1e-6)),  g_J = g(√(Σ_a (S_a u_σ)² + 1e-6))
///     div(X, g) = Σ_a S_a(g · S_a X)                     (flux divergence, Sobel S_a)
///     div_I = div(u, g_I),   div_J = Σ_a div(J_aa,ρ, g_J)
///     g(v)  = 1 / (1 + (|v| / K)^p)                      (edge-stopping function, Eq. 11)
///
/// and `L = mean((div_I(pred) − div_I(target))²) + mean((div_J(pred) − div_J(target))²)`.
///
/// - 2D is exactly the seed: `sobel_x` along W, the seed's `sobel_y` along H (the negated
///   `[-1,0,1]ᵀ ⊗ [1,2,1]`; the sign cancels since every Sobel is applied twice or squared).
///   3D follows FORMAT.md: the Sobel of axis a is `[-1,0,1]` along a ⊗ `[1,2,1]` along the other
///   two, the structure-tensor trace is J11 + J22 + J33, and the Gaussians are 3D.
/// - Gaussian kernels: size 2·⌈3σ⌉ + 1, normalised (`gaussianTaps`); all filters zero-pad.
/// - prediction, target: `[N, 1, H, W]` or `[N, 1, D, H, W]`; K is in intensity units (20 for
///   0–255 images, as the seed recommends; use ~0.1–1 for probabilities).
/// - Reduction: means over all elements. Degenerate inputs: a constant image has zero fluxes
///   (the `+ 1e-6` keeps the square roots differentiable), so pred = target = constant gives 0.
/// - Computed as one recorded operation with a hand-written adjoint (`fused`, in
///   PhysicalRegularizationKernel.swift), tested against `composed`, the same math built from
///   differentiable separable filters (`Tensor.correlated(with:)`) whose gradient autograd
///   derives; only the prediction is differentiated. Linearity is used twice (the
///   structure-tensor trace is smoothed once; div_J is one divergence of that trace), which
///   leaves 5·rank + 2 filter passes per image instead of 2·rank² + 4·rank + 1 (3D: 17, not 31).
public struct PhysicalRegularizationLoss: Sendable {
    /// Edge-sensitive threshold of g.
    public var K: Float
    /// Exponent of g.
    public var p: Float
    /// Standard deviation (voxels) of the initial smoothing.
    public var sigma: Double
    /// Standard deviation (voxels) of the structure-tensor smoothing.
    public var rho: Double

    public init(K: Float = 20, p: Float = 2, sigma: Double = 1, rho: Double = 0.5) {
        self.K = K
        self.p = p
        self.sigma = sigma
        self.rho = rho
    }

    public func callAsFunction(prediction: Tensor, target: Tensor) -> Tensor {
        checkShapes(prediction, target)
        let t = targetFluxes(target)
        return fused(prediction: prediction, targetDivI: t.divI, targetDivJ: t.divJ)
    }

    /// The loss against a target given by its flux divergences (`targetFluxes(target)`): the same
    /// value and gradient as `callAsFunction(prediction:target:)`. A label map's fluxes are
    /// constants of training, so a loop can compute them once per labelled image instead of
    /// once per step.
    public func callAsFunction(prediction: Tensor, targetFluxes t: (divI: Tensor, divJ: Tensor)) -> Tensor {
        prediction.preconditionImage("PhysicalRegularizationLoss", channels: 1)
        precondition(t.divI.shape == prediction.shape && t.divJ.shape == prediction.shape,
                     "PhysicalRegularizationLoss: target fluxes \(t.divI.shape), \(t.divJ.shape) differ from \(prediction.shape)")
        return fused(prediction: prediction, targetDivI: t.divI, targetDivJ: t.divJ)
    }

    /// `(div_I, div_J)` of a target image `[N, 1, spatial…]` (values, no gradient).
    public func targetFluxes(_ target: Tensor) -> (divI: Tensor, divJ: Tensor) {
        target.preconditionImage("PhysicalRegularizationLoss", channels: 1)
        let x = withoutGradients { fields(target) }
        return (x.divI, x.divJ)
    }

    /// The same loss composed of differentiable tensor operations (autograd derives the
    /// gradient): the reference `fused` (PhysicalRegularizationKernel.swift) is tested against.
    public func composed(prediction: Tensor, target: Tensor) -> Tensor {
        checkShapes(prediction, target)
        let (divIp, divJp) = divergences(prediction)
        let (divIt, divJt) = divergences(target)
        let mse = MeanSquaredError()
        return mse(divIp, divIt) + mse(divJp, divJt)
    }

    /// One-channel images `[N, 1, spatial…]` of the same shape.
    private func checkShapes(_ prediction: Tensor, _ target: Tensor) {
        prediction.preconditionImage("PhysicalRegularizationLoss", channels: 1)
        precondition(target.shape == prediction.shape, "PhysicalRegularizationLoss: target \(target.shape) differs from \(prediction.shape)")
    }

    /// The Sobel kernels, one per spatial axis, as the seed (2D) and FORMAT.md (3D) define them.
    func sobelKernels(rank: Int) -> [SeparableKernel] {
        if rank == 2 {
            return [SeparableKernel.sobel(axis: 0, rank: 2).scaled(by: -1), .sobel(axis: 1, rank: 2)]
        }
        return (0..<rank).map { SeparableKernel.sobel(axis: $0, rank: rank) }
    }

    /// g(√(x + 1e-6)) with g(v) = 1 / (1 + (v/K)^p), for a sum of squares x ≥ 0, as one
    /// elementwise op (`EdgeStopOfNorm`): one pass each way instead of six.
    func edgeStopOfNorm(_ squares: Tensor) -> Tensor {
        squares.map(EdgeStopOfNorm(K: K, p: p))
    }

    /// (div_I, div_J) of one image, seed 000's `_compute_pde_components`.
    func divergences(_ u: Tensor) -> (Tensor, Tensor) {
        let sobels = sobelKernels(rank: u.spatialRank)
        func div(_ x: Tensor, _ g: Tensor) -> Tensor {
            sobels.map { k in (g * x.correlated(with: k)).correlated(with: k) }.reduce(+)!
        }
        let smoothed = u.gaussianSmoothed(sigma: sigma)
        let squares = sobels.map { smoothed.correlated(with: $0).squared() }
        let sumOfSquares = squares.reduce(+)!
        // Σ_a J_aa,ρ = G_ρ ∗ Σ_a J_aa (the Gaussian is linear): one smoothing, not one per axis.
        let trace = sumOfSquares.gaussianSmoothed(sigma: rho)
        let gI = edgeStopOfNorm(trace)
        let gJ = edgeStopOfNorm(sumOfSquares)
        let divI = div(u, gI)
        // div_J = Σ_a div(J_aa,ρ, g_J) = div(Σ_a J_aa,ρ, g_J): div is linear in its field, so
        // 2·rank Sobel passes instead of 2·rank² (3D: 6 instead of 18), forward and backward.
        let divJ = div(trace, gJ)
        return (divI, divJ)
    }
}

extension Array where Element == Tensor {
    /// Σ of the tensors, nil when empty.
    fileprivate func reduce(_ op: (Tensor, Tensor) -> Tensor) -> Tensor? {
        guard var acc = first else { return nil }
        for t in dropFirst() { acc = op(acc, t) }
        return acc
    }
}

/// `g(√(x + ε)) = 1 / (1 + (x + ε)^(p/2) / K^p)` with ε = 1e-6, and its derivative
/// `dg/dx = −g² · (p/2) · (x + ε)^(p/2 − 1) / K^p` (for p = 2: `−g² / K²`). Fuses the square
/// root, the scaling, the power and the reciprocal of the edge-stopping function of a gradient
/// norm (PRL's g_I and g_J).
struct EdgeStopOfNorm: UnaryFunction {
    var K: Float
    var p: Float

    @inline(__always) func value(_ x: Float) -> Float {
        if p == 2 { return SquareEdgeStopOfNorm(K: K).value(x) }
        return 1 / (1 + Foundation.pow(x + 1e-6, p / 2) / Foundation.pow(K, p))
    }

    @inline(__always) func derivative(x: Float, y: Float) -> Float {
        if p == 2 { return SquareEdgeStopOfNorm(K: K).derivative(x: x, y: y) }
        return -y * y * (p / 2) * Foundation.pow(x + 1e-6, p / 2 - 1) / Foundation.pow(K, p)
    }
}

/// `EdgeStopOfNorm` at p = 2 (the seed's default) in closed form, no power:
/// `g = 1 / (1 + (x + ε) / K²)`, `dg/dx = −g² / K²`. A type of its own so that loops over it
/// (PRL's fused kernel) are chosen once for the exponent, and vectorise.
struct SquareEdgeStopOfNorm: UnaryFunction {
    var K: Float

    @inline(__always) func value(_ x: Float) -> Float { 1 / (1 + (x + 1e-6) / (K * K)) }

    @inline(__always) func derivative(x: Float, y: Float) -> Float { -y * y / (K * K) }
}
