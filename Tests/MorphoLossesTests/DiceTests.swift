import Foundation
import MorphoLosses
import MorphoTensor
import XCTest

final class DiceTests: XCTestCase {
    var rng = RandomGenerator(seed: 21)

    /// MONAI soft Dice (softmax, one-hot, batch=False, mean) computed naively in Double.
    func naiveSoftDice(_ logits: Tensor, _ labels: Tensor, includeBackground: Bool, sn: Double = 1e-5, sd: Double = 1e-5) -> Double {
        let n = logits.shape[0], c = logits.shape[1], s = logits.spatialCount
        var total = 0.0, terms = 0
        for item in 0..<n {
            var inter = [Double](repeating: 0, count: c), pred = inter, truth = inter
            for v in 0..<s {
                let xs = (0..<c).map { Double(logits[flat: (item * c + $0) * s + v]) }
                let m = xs.max()!
                let e = xs.map { Foundation.exp($0 - m) }
                let z = e.reduce(0, +)
                let y = Int(labels[flat: item * s + v])
                for k in 0..<c { pred[k] += e[k] / z }
                inter[y] += e[y] / z
                truth[y] += 1
            }
            for k in (includeBackground ? 0 : 1)..<c {
                total += 1 - (2 * inter[k] + sn) / (pred[k] + truth[k] + sd)
                terms += 1
            }
        }
        return total / Double(terms)
    }

    func testBinaryDiceMatchesTheSeedFormula() {
        let input = Tensor.randomUniform([3, 1, 5, 6], using: &rng)
        let target = randomLabels([3, 1, 5, 6], classes: 2, using: &rng)
        var dice = 0.0
        for n in 0..<3 {
            var it = 0.0, si = 0.0, st = 0.0
            for v in 0..<30 {
                let a = Double(input[flat: n * 30 + v]), b = Double(target[flat: n * 30 + v])
                it += a * b; si += a; st += b
            }
            dice += (2 * it + 1) / (si + st + 1)
        }
        assertClose(BinaryDiceLoss()(input, target).item, 1 - dice / 3, 1e-6, "binary Dice")
    }

    func testBinaryDiceGradient() {
        let target = randomLabels([2, 1, 4, 5, 3], classes: 2, using: &rng)
        assertGradient([Tensor.randomUniform([2, 1, 4, 5, 3], low: 0.1, high: 0.9, using: &rng)]) { BinaryDiceLoss()($0[0], target) }
    }

    func testBinaryDiceOfEmptyTargetAndEmptyPredictionIsZero() {
        let zeros = Tensor.zeros([2, 1, 4, 4])
        let loss = BinaryDiceLoss()(zeros.requiringGrad(), zeros)
        XCTAssertEqual(loss.item, 0)
        loss.backward()
    }

    func testSoftDiceMatchesNaiveMONAISemantics() {
        for shape in [[2, 3, 7, 9], [2, 3, 4, 5, 6]] {
            let logits = Tensor.randomNormal(shape, std: 2, using: &rng)
            let labels = randomLabels([shape[0], 1] + Array(shape.dropFirst(2)), classes: 3, using: &rng)
            for bg in [true, false] {
                let ours = SoftDiceLoss(includeBackground: bg)(logits: logits, labels: labels).item
                assertClose(ours, naiveSoftDice(logits, labels, includeBackground: bg), 1e-5, "soft Dice \(shape) bg \(bg)")
            }
        }
    }

    func testSoftDiceHandlesTailsAndOddSizes() {
        // 1·2·3·5 = 30 voxels: one full block of 16 lanes and a tail of 14.
        let logits = Tensor.randomNormal([1, 4, 2, 3, 5], using: &rng)
        let labels = randomLabels([1, 2, 3, 5], classes: 4, using: &rng)
        assertClose(SoftDiceLoss()(logits: logits, labels: labels).item, naiveSoftDice(logits, labels, includeBackground: true), 1e-5)
    }

    func testSoftDiceGradientWithAndWithoutBackground() {
        let labels = randomLabels([2, 1, 5, 6], classes: 3, using: &rng)
        let logits = Tensor.randomNormal([2, 3, 5, 6], using: &rng)
        assertGradient([logits]) { SoftDiceLoss(includeBackground: true)(logits: $0[0], labels: labels) }
        assertGradient([logits]) { SoftDiceLoss(includeBackground: false)(logits: $0[0], labels: labels) }
    }

    func testDiceCEIsDicePlusMeanCrossEntropy() {
        let logits = Tensor.randomNormal([2, 2, 4, 5, 6], using: &rng)
        let labels = randomLabels([2, 1, 4, 5, 6], classes: 2, using: &rng)
        let dice = SoftDiceLoss()(logits: logits, labels: labels).item
        let ce = CrossEntropyLoss()(logits: logits, labels: labels).item
        let both = DiceCELoss(lambdaDice: 0.7, lambdaCE: 1.3)(logits: logits, labels: labels).item
        XCTAssertEqual(both, 0.7 * dice + 1.3 * ce, accuracy: 1e-5)
    }

    func testDiceCEGradient3D() {
        let labels = randomLabels([1, 1, 3, 4, 5], classes: 3, using: &rng)
        assertGradient([Tensor.randomNormal([1, 3, 3, 4, 5], using: &rng)]) { DiceCELoss(lambdaDice: 0.5, lambdaCE: 2)(logits: $0[0], labels: labels) }
    }

    func testSoftDiceWithAbsentClassesScoresEachAsOneMinusSmoothOverItsPrediction() {
        let labels = Tensor.zeros([2, 1, 4, 4])   // only the background
        let logits = Tensor.randomNormal([2, 3, 4, 4], using: &rng)
        let loss = SoftDiceLoss(includeBackground: false)(logits: logits.requiringGrad(), labels: labels)
        // Classes 1 and 2 are absent from both items (g = 0): each (n, c) scores
        // 1 − 1e-5 / (Σ_v p_cv + 1e-5), averaged over the 4 pairs (MONAI's DiceLoss formula; side check
        // in /tmp/ref, MONAI 1.6.1: DiceLoss(include_background=False, softmax=True, to_onehot_y=True,
        // smooth_nr=1e-5, smooth_dr=1e-5)(x, zeros) on x = randn(2, 3, 4, 4) gave 0.9999981140797367,
        // and this formula on the same x 0.9999981140797367).
        var expected = 0.0
        for n in 0..<2 {
            for c in 1..<3 {
                var sum = 0.0
                for v in 0..<16 {
                    let x = (0..<3).map { Double(logits[flat: (n * 3 + $0) * 16 + v]) }
                    sum += Foundation.exp(x[c]) / x.map(Foundation.exp).reduce(0, +)
                }
                expected += (1 - 1e-5 / (sum + 1e-5)) / 4
            }
        }
        assertClose(loss.item, expected, 1e-5, "absent classes")
        assertGradient([logits]) { SoftDiceLoss(includeBackground: false)(logits: $0[0], labels: labels) }
    }

    func testPerfectPredictionGivesNearZeroDice() {
        let labels = randomLabels([1, 1, 6, 6], classes: 3, using: &rng)
        let logits = Tensor(shape: [1, 3, 6, 6]) { p in
            for k in 0..<3 { for v in 0..<36 { p[k * 36 + v] = labels[flat: v] == Float(k) ? 30 : -30 } }
        }
        XCTAssertLessThan(SoftDiceLoss()(logits: logits, labels: labels).item, 1e-5)
    }

    /// The per-(item, channel) soft Dice of two maps, naively in Double.
    func naiveProbabilityDice(_ a: Tensor, _ b: Tensor, smooth: Double = 1e-5) -> Double {
        let rows = a.shape[0] * a.shape[1], s = a.count / rows
        var total = 0.0
        for r in 0..<rows {
            var ab = 0.0, sa = 0.0, sb = 0.0
            for v in 0..<s {
                let x = Double(a[flat: r * s + v]), y = Double(b[flat: r * s + v])
                ab += x * y; sa += x; sb += y
            }
            total += (2 * ab + smooth) / (sa + sb + smooth)
        }
        return 1 - total / Double(rows)
    }

    func testProbabilityDiceMatchesThePerChannelFormulaOnBlocksAndTails() {
        // 2·3 rows of 4 · 37 · 30 = 4440 voxels: a full 4096 block, a short one, and a scalar tail.
        let a = Tensor.randomUniform([2, 3, 4, 37, 30], using: &rng), b = Tensor.randomUniform([2, 3, 4, 37, 30], using: &rng)
        assertClose(ProbabilityDiceLoss()(a, b).item, naiveProbabilityDice(a, b), 1e-5, "probability Dice")
        let small = Tensor.randomUniform([1, 2, 3, 5], using: &rng), other = Tensor.randomUniform([1, 2, 3, 5], using: &rng)
        assertClose(ProbabilityDiceLoss(smooth: 1)(small, other).item, naiveProbabilityDice(small, other, smooth: 1), 1e-6, "smooth 1")
    }

    func testProbabilityDiceGradientReachesBothMaps() {
        let a = Tensor.randomUniform([2, 2, 3, 4, 5], low: 0.1, high: 0.9, using: &rng)
        let b = Tensor.randomUniform([2, 2, 3, 4, 5], low: 0.1, high: 0.9, using: &rng)
        assertGradient([a, b]) { ProbabilityDiceLoss()($0[0], $0[1]) }
        // Against a one-hot constant, only the probabilities get a gradient.
        let target = oneHotMap(randomLabels([2, 1, 3, 4, 5], classes: 2, using: &rng))
        assertGradient([a]) { ProbabilityDiceLoss()($0[0], target) }
    }

    func testProbabilityDiceOfIdenticalOneHotMapsIsZeroAndOfEmptyMapsIsZero() {
        let target = oneHotMap(randomLabels([1, 1, 6, 6], classes: 2, using: &rng))
        XCTAssertLessThan(ProbabilityDiceLoss()(target, target).item, 1e-6)
        let zeros = Tensor.zeros([2, 2, 4, 4]).requiringGrad()
        let loss = ProbabilityDiceLoss()(zeros, Tensor.zeros([2, 2, 4, 4]))
        XCTAssertEqual(loss.item, 0)
        loss.backward()
        // a = b = 0: num = den = ε, so ∂L/∂a_v = −(2·0/ε − ε/ε²)/rows = 1/(ε·rows), rows = 2·2.
        let expected = 1 / (Double(Float(1e-5)) * 4)
        for g in zeros.grad!.scalars { XCTAssertEqual(Double(g), expected, accuracy: 1e-4 * expected) }
    }

    /// `[N, 2, spatial…]`: background and foreground indicators of 0/1 labels `[N, 1, spatial…]`.
    func oneHotMap(_ labels: Tensor) -> Tensor {
        Tensor.concat([1 - labels, labels], axis: 1)
    }
}
