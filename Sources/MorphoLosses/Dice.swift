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
/// - Gradient: to the input (and to a target that requires one), `rowwiseDice` with a row per item.
public struct BinaryDiceLoss: Sendable {
    public var smooth: Float

    public init(smooth: Float = 1) { self.smooth = smooth }

    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        precondition(input.rank >= 1 && input.count == target.count,
                     "BinaryDiceLoss: input \(input.shape) and target \(target.shape) differ")
        return rowwiseDice(input, target, rows: input.shape[0], smooth: Double(smooth))
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

/// Soft Dice between two probability maps — or a probability map and a one-hot target — scored
/// per item and channel: VoxelMorph's `Dice` loss on warped segmentations and the anatomy
/// (coupling) term of joint registration + segmentation (DeepAtlas):
///
///     L = 1 − mean_{n, c} (2 Σ_v a·b + ε) / (Σ_v a + Σ_v b + ε),   ε = smooth (1e-5)
///
/// - a, b: `[N, C, spatial...]` of one shape, values in [0, 1]. Every channel is scored: pass
///   the foreground channels only to leave the background out.
/// - Gradients reach both maps: with num = 2 Σ a·b + ε and den = Σ a + Σ b + ε of the row,
///   `∂L/∂a_v = −(2 b_v / den − num / den²) / (N·C)`, and `∂L/∂b_v` the same with a_v.
/// - A channel empty in both maps scores 1 (loss 0 from it).
/// - One pass over both maps forward (three sums per row) and one backward.
public struct ProbabilityDiceLoss: Sendable {
    public var smooth: Float

    public init(smooth: Float = 1e-5) { self.smooth = smooth }

    public func callAsFunction(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.rank >= 3 && a.shape == b.shape, "ProbabilityDiceLoss: maps \(a.shape) and \(b.shape) differ")
        return rowwiseDice(a, b, rows: a.shape[0] * a.shape[1], smooth: Double(smooth))
    }
}

/// `1 − mean_r (2 Σ a·b + s) / (Σ a + Σ b + s)` over `rows` consecutive equal runs of the
/// elements of two maps of one element count (`BinaryDiceLoss`: a row per item;
/// `ProbabilityDiceLoss`: a row per item and channel), with its gradient to each map that
/// requires one: num = 2 Σ a·b + s and den = Σ a + Σ b + s of the row give
/// `∂L/∂a_v = −(2 b_v / den − num / den²) / rows`, and `∂L/∂b_v` the same with a_v. The sums run
/// in 16 float lanes within blocks of 4096 elements, added in double.
func rowwiseDice(_ a: Tensor, _ b: Tensor, rows: Int, smooth: Double) -> Tensor {
    precondition(a.count == b.count && rows > 0 && a.count % rows == 0, "Dice: maps \(a.shape) and \(b.shape) in \(rows) rows")
    let s = a.count / rows
    let pa = a.storage.pointer, pb = b.storage.pointer
    // Per row: [Σ a·b, Σ a, Σ b].
    let sums = blockSums(items: rows, spatial: s, width: 3) { row, range, acc in
        typealias V = SIMD16<Float>
        let x = pa + row * s, y = pb + row * s
        var (ab, sa, sb) = (V(), V(), V())
        var j = range.lowerBound
        while j + 16 <= range.upperBound {
            let u = UnsafeRawPointer(x + j).loadUnaligned(as: V.self), w = UnsafeRawPointer(y + j).loadUnaligned(as: V.self)
            ab = ab.addingProduct(u, w); sa += u; sb += w
            j += 16
        }
        var (tab, ta, tb) = (Double(ab.sum()), Double(sa.sum()), Double(sb.sum()))
        while j < range.upperBound {
            let u = Double(x[j]), w = Double(y[j])
            tab += u * w; ta += u; tb += w
            j += 1
        }
        acc[0] = tab; acc[1] = ta; acc[2] = tb
    }
    var dice = 0.0
    var coefA = [Float](repeating: 0, count: rows), coefB = [Float](repeating: 0, count: rows)
    for row in 0..<rows {
        let num = 2 * sums[3 * row] + smooth, den = sums[3 * row + 1] + sums[3 * row + 2] + smooth
        dice += num / den
        coefA[row] = Float(2 / den)
        coefB[row] = Float(num / (den * den))
    }
    let value = Tensor(scalar: Float(1 - dice / Double(rows)))
    return Tensor.record(value, inputs: [a, b]) { g in
        let scale = -g.item / Float(rows)
        // ∂L/∂(one map) reads the other map.
        func gradient(of x: Tensor, reading other: Tensor) -> Tensor? {
            guard x.requiresGrad else { return nil }
            return Tensor(shape: x.shape) { out in
                let o = other.storage.pointer
                forEachBlock(items: rows, spatial: s) { row, range in
                    let c = coefA[row] * scale, d = coefB[row] * scale
                    for j in range { out[row * s + j] = c * o[row * s + j] - d }
                }
            }
        }
        return [gradient(of: a, reading: b), gradient(of: b, reading: a)]
    }
}
