import Foundation
import MorphoTensor

/// PRObabilistic Parametric rEgression Loss (seed 003; Asad et al., "PROPEL: Probabilistic
/// Parametric Regression Loss for Convolutional Neural Networks", ICPR 2020). The network predicts
/// a mixture of I Gaussians with diagonal covariances; the loss compares it with an isotropic
/// Gaussian around the target through the L2 distance of densities:
///
///     T1 = (2/I) Σ_i G(P_gt, P_i)
///     T2 = H(P_gt) + (1/I²) Σ_i H(P_i) + (2/I²) Σ_{i<j} G(P_i, P_j)
///     L  = mean_batch [ −log10 T1 + log10 T2 ]
///
///     G(P, Q) = exp(Σ_d (2μ_d ν_d − μ_d² − ν_d²) / (2(s_d + t_d))) / ((√(2π))^D · √Π_d(s_d + t_d))
///     H(P)    = 1 / ((2√π)^D · √Π_d s_d)
///
/// where s, t are variances, and every denominator is clamped below at ε = 2.22e-16 like the seed.
/// As executed by the seed, H(P_gt) is evaluated on the `[1, 1, 1]` parameter σ², so its D is 1:
/// H(P_gt) = 1 / (2√π · σ) whatever the target dimension.
///
/// - output: `[B, I, 2D]`; `output[..., :D]` are the means, `output[..., D:]` standard deviations
///   (squared into variances inside).
/// - target: `[B, D]`.
/// - sigma: standard deviation of the target Gaussian (variance σ²).
/// - Reduction: mean over the batch. Composed from differentiable ops.
public struct PROPELLoss: Sendable {
    public var sigma: Float

    public init(sigma: Float = 0.1) { self.sigma = sigma }

    static let eps: Float = 2.220446049250313e-16

    public func callAsFunction(output: Tensor, target: Tensor) -> Tensor {
        precondition(output.rank == 3 && output.shape[2] % 2 == 0 && output.shape[2] > 0,
                     "PROPELLoss: expected output [B, I, 2D], got \(output.shape)")
        let b = output.shape[0], gaussians = output.shape[1], d = output.shape[2] / 2
        precondition(target.shape == [b, d], "PROPELLoss: target \(target.shape) does not match output \(output.shape) (want [\(b), \(d)])")
        let mu = output.slice(axis: 2, 0 ..< d)
        let variance = output.slice(axis: 2, d ..< 2 * d).squared()
        let targetMean = target.reshaped([b, 1, d])
        let targetVariance = sigma * sigma
        let g = Float(gaussians)

        let t1 = Self.g(targetMean, mu, sumVariance: variance + targetVariance).sum(axes: [1]) * (2 / g)
        let hTarget = 1 / max(2 * Float.pi.squareRoot() * targetVariance.squareRoot(), Self.eps)
        var t2 = Self.h(variance).sum(axes: [1]) * (1 / (g * g)) + hTarget
        if gaussians > 1 {
            var first: [Int] = [], second: [Int] = []
            for i in 0..<gaussians { for j in (i + 1)..<gaussians { first.append(i); second.append(j) } }
            func pick(_ t: Tensor, _ idx: [Int]) -> Tensor { Tensor.concat(idx.map { t.slice(axis: 1, $0 ..< $0 + 1) }, axis: 1) }
            let pairs = Self.g(pick(mu, first), pick(mu, second), sumVariance: pick(variance, first) + pick(variance, second))
            t2 = t2 + pairs.sum(axes: [1]) * (2 / (g * g))
        }
        let ln10 = Float(Foundation.log(10.0))
        return ((t2.log() - t1.log()) * (1 / ln10)).mean()
    }

    /// Π over the last axis of `[B, I, D]`, as `[B, I, 1]`.
    static func productOverLast(_ t: Tensor) -> Tensor {
        let d = t.shape[2]
        var p = t.slice(axis: 2, 0 ..< 1)
        for k in 1..<max(d, 1) { p = p * t.slice(axis: 2, k ..< k + 1) }
        return p
    }

    /// G of two Gaussians given means `[B, I, D]` (or broadcastable) and the summed variances.
    static func g(_ mu1: Tensor, _ mu2: Tensor, sumVariance: Tensor) -> Tensor {
        let d = sumVariance.shape[2]
        let norm = Float(Foundation.pow((2 * Double.pi).squareRoot(), Double(d)))
        let a = 1 / (productOverLast(sumVariance).sqrt() * norm).clamped(min: eps)
        let exponent = ((2 * mu1 * mu2 - mu1.squared() - mu2.squared()) / (sumVariance * 2).clamped(min: eps))
            .sum(axes: [2], keepDims: true)
        return a * exponent.exp()
    }

    /// H of Gaussians with variances `[B, I, D]`, as `[B, I, 1]`.
    static func h(_ variance: Tensor) -> Tensor {
        let d = variance.shape[2]
        let norm = Float(Foundation.pow(2 * Double.pi.squareRoot(), Double(d)))
        return 1 / (productOverLast(variance).sqrt() * norm).clamped(min: eps)
    }
}
