import MorphoKernels
import MorphoTensor

/// Binary soft Dice loss with additive smoothing (seed 001, `BinaryDiceLoss`):
///
///     L = 1 − (1/N) Σ_n (2 Σ_v i·t + s) / (Σ_v i + Σ_v t + s),   s = smooth (1)
///
/// - input: `[N, ...]` probabilities (a sigmoid output, typically `[N, 1, D, H, W]`).
/// - target: the same shape (or element count), 0/1 (soft targets allowed).
/// - Reduction: the per-item Dice is averaged over the batch.
/// - Degenerate inputs: an empty target with an all-zero prediction gives Dice 1 (loss 0) thanks
///   to the smoothing; nothing divides by zero while `smooth > 0`.
public struct BinaryDiceLoss: Sendable {
    public var smooth: Float

    public init(smooth: Float = 1) { self.smooth = smooth }

    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        precondition(input.rank >= 1 && input.count == target.count,
                     "BinaryDiceLoss: input \(input.shape) and target \(target.shape) differ")
        let n = input.shape[0], s = input.count / max(n, 1)
        let smooth = Double(self.smooth)
        let x = input.storage.pointer, t = target.storage.pointer
        // Per item: [Σ i·t, Σ i, Σ t].
        let sums = blockSums(items: n, spatial: s, width: 3) { item, range, acc in
            var it = 0.0, si = 0.0, st = 0.0
            for j in range {
                let a = Double(x[item * s + j]), b = Double(t[item * s + j])
                it += a * b; si += a; st += b
            }
            acc[0] = it; acc[1] = si; acc[2] = st
        }
        var dice = 0.0
        var coefA = [Float](repeating: 0, count: n), coefB = [Float](repeating: 0, count: n)
        for item in 0..<n {
            let num = 2 * sums[3 * item] + smooth, den = sums[3 * item + 1] + sums[3 * item + 2] + smooth
            dice += num / den
            // d(num/den)/d i_v = 2 t_v / den − num / den².
            coefA[item] = Float(2 / den)
            coefB[item] = Float(num / (den * den))
        }
        let value = Tensor(scalar: Float(1 - dice / Double(n)))
        return Tensor.record(value, inputs: [input, target]) { g in
            let scale = -g.item / Float(n)
            let dx = Tensor(shape: input.shape) { out in
                let t = target.storage.pointer
                forEachBlock(items: n, spatial: s) { item, range in
                    let a = coefA[item] * scale, b = coefB[item] * scale
                    for j in range { out[item * s + j] = a * t[item * s + j] - b }
                }
            }
            return [dx, nil]
        }
    }
}

/// Multi-class soft Dice on logits, MONAI `DiceLoss(softmax=True, to_onehot_y=True)` semantics
/// (`batch=False`, reduction mean):
///
///     p = softmax(logits) over channels, g = onehot(labels)
///     L = mean_{n, c} [ 1 − (2 Σ_v p·g + smooth_nr) / (Σ_v p + Σ_v g + smooth_dr) ]
///
/// with c over all classes, or 1..<C when `includeBackground` is false (channel 0 is dropped
/// after the softmax, as MONAI does).
///
/// - logits: `[N, C, H, W]` or `[N, C, D, H, W]`, unnormalised.
/// - labels: `[N, 1, ...]` or `[N, ...]`, integral class indices in `0..<C` (stored as Float).
/// - Degenerate inputs: a class absent from an item's labels contributes
///   `1 − smooth_nr / (Σ p + smooth_dr)` — close to 1 unless the prediction is empty too; with
///   the default smoothing (1e-5) nothing divides by zero.
public struct SoftDiceLoss: Sendable {
    public var includeBackground: Bool
    public var smoothNumerator: Float
    public var smoothDenominator: Float

    public init(includeBackground: Bool = true, smoothNumerator: Float = 1e-5, smoothDenominator: Float = 1e-5) {
        self.includeBackground = includeBackground
        self.smoothNumerator = smoothNumerator
        self.smoothDenominator = smoothDenominator
    }

    public func callAsFunction(logits: Tensor, labels: Tensor) -> Tensor {
        softmaxRegionalLoss(logits: logits, labels: labels, terms: RegionalTerms(
            lambdaDice: 1, includeBackground: includeBackground,
            smoothNumerator: Double(smoothNumerator), smoothDenominator: Double(smoothDenominator)), "SoftDiceLoss")
    }
}

/// Soft Dice plus cross-entropy on logits, MONAI `DiceCELoss(softmax=True, to_onehot_y=True)`:
///
///     L = λ_dice · SoftDiceLoss(includeBackground)(logits, labels) + λ_ce · mean_v CE(logits, labels)
///
/// The CE term is PyTorch's unweighted `CrossEntropyLoss` averaged over every voxel of every item.
/// Shapes as `SoftDiceLoss`. One fused pass forward and one backward (see SoftmaxRegionalLoss).
public struct DiceCELoss: Sendable {
    public var lambdaDice: Float
    public var lambdaCE: Float
    public var includeBackground: Bool
    public var smoothNumerator: Float
    public var smoothDenominator: Float

    public init(lambdaDice: Float = 1, lambdaCE: Float = 1, includeBackground: Bool = true,
                smoothNumerator: Float = 1e-5, smoothDenominator: Float = 1e-5) {
        self.lambdaDice = lambdaDice
        self.lambdaCE = lambdaCE
        self.includeBackground = includeBackground
        self.smoothNumerator = smoothNumerator
        self.smoothDenominator = smoothDenominator
    }

    public func callAsFunction(logits: Tensor, labels: Tensor) -> Tensor {
        softmaxRegionalLoss(logits: logits, labels: labels, terms: RegionalTerms(
            lambdaDice: lambdaDice, includeBackground: includeBackground,
            smoothNumerator: Double(smoothNumerator), smoothDenominator: Double(smoothDenominator),
            lambdaCE: lambdaCE), "DiceCELoss")
    }
}
