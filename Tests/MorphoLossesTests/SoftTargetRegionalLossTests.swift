import Foundation
import MorphoLosses
import MorphoTensor
import XCTest

/// `SoftTargetRegionalLoss`: the regional losses against class-probability targets.
final class SoftTargetRegionalLossTests: XCTestCase {
    var rng = RandomGenerator(seed: 31)

    /// `[N, C, spatial…]` one-hot of class indices `[N, 1, spatial…]`.
    func oneHot(_ labels: Tensor, classes: Int) -> Tensor {
        let n = labels.shape[0], s = labels.spatialCount
        return Tensor(shape: [n, classes] + labels.spatialShape) { p in
            for i in 0..<(n * classes * s) { p[i] = 0 }
            for item in 0..<n {
                for v in 0..<s { p[(item * classes + Int(labels[flat: item * s + v])) * s + v] = 1 }
            }
        }
    }

    /// With one-hot targets every kind equals the fused hard loss of the same kind, value and
    /// gradient in the logits: soft Dice (with and without background), CE, Dice + CE, balanced CE.
    func testOneHotTargetsGiveTheHardLossesValueAndGradient() {
        let labels = randomLabels([2, 1, 6, 7], classes: 3, using: &rng)
        let targets = oneHot(labels, classes: 3)
        let base = withoutGradients { Tensor.randomNormal([2, 3, 6, 7], using: &rng) }
        let cases: [(String, SoftTargetRegionalLoss, (Tensor) -> Tensor)] = [
            ("dice", SoftTargetRegionalLoss(lambdaDice: 1, lambdaCE: 0), { SoftDiceLoss()(logits: $0, labels: labels) }),
            ("dice no background", SoftTargetRegionalLoss(lambdaDice: 1, lambdaCE: 0, includeBackground: false),
             { SoftDiceLoss(includeBackground: false)(logits: $0, labels: labels) }),
            ("ce", SoftTargetRegionalLoss(lambdaDice: 0, lambdaCE: 1), { CrossEntropyLoss()(logits: $0, labels: labels) }),
            ("dice_ce", SoftTargetRegionalLoss(), { DiceCELoss()(logits: $0, labels: labels) }),
            ("balanced_ce", SoftTargetRegionalLoss(lambdaDice: 0, lambdaCE: 1, balanced: true),
             { BalancedCrossEntropyLoss()(logits: $0, labels: labels) }),
        ]
        for (name, soft, hard) in cases {
            let a = base.detached().requiringGrad(), b = base.detached().requiringGrad()
            let softValue = soft(logits: a, targets: targets), hardValue = hard(b)
            XCTAssertGreaterThan(hardValue.item, 0, name)
            assertClose(softValue.item, Double(hardValue.item), 1e-5, name)
            softValue.backward()
            hardValue.backward()
            let ga = a.grad!.scalars, gb = b.grad!.scalars
            let scale = gb.reduce(0) { max($0, abs($1)) }
            XCTAssertGreaterThan(scale, 0, name)
            for k in ga.indices { XCTAssertEqual(ga[k], gb[k], accuracy: 1e-5 * scale + 1e-7, "\(name) gradient \(k)") }
        }
    }

    /// A soft target by hand, in Double: Dice per (item, class) against the target's masses and
    /// CE as the target-weighted log-softmax, averaged over items and voxels.
    func testSoftTargetsFollowTheFormula() {
        let logits = Tensor.randomNormal([2, 3, 4, 5], using: &rng)
        let targets = randomProbabilities([2, 3, 4, 5], using: &rng)
        let value = SoftTargetRegionalLoss()(logits: logits, targets: targets).item
        let n = 2, c = 3, s = 20
        var dice = 0.0, ce = 0.0
        for item in 0..<n {
            var inter = [Double](repeating: 0, count: c), pred = inter, truth = inter
            for v in 0..<s {
                let x = (0..<c).map { Double(logits[flat: (item * c + $0) * s + v]) }
                let m = x.max()!, lse = m + Foundation.log(x.map { Foundation.exp($0 - m) }.reduce(0, +))
                for k in 0..<c {
                    let p = Foundation.exp(x[k] - lse), t = Double(targets[flat: (item * c + k) * s + v])
                    inter[k] += p * t; pred[k] += p; truth[k] += t
                    ce -= t * (x[k] - lse)
                }
            }
            for k in 0..<c { dice += 1 - (2 * inter[k] + 1e-5) / (pred[k] + truth[k] + 1e-5) }
        }
        let expected = dice / Double(n * c) + ce / Double(n * s)
        XCTAssertGreaterThan(expected, 0)
        assertClose(value, expected, 1e-5, "soft Dice + CE")
    }

    /// Finite differences in the logits against soft targets, plain and balanced.
    func testGradientInTheLogitsMatchesFiniteDifferences() {
        let logits = Tensor.randomNormal([2, 3, 4, 4], using: &rng)
        let targets = randomProbabilities([2, 3, 4, 4], using: &rng)
        assertGradient([logits], h: 1e-2, rtol: 2e-2, atol: 1e-5) { SoftTargetRegionalLoss(includeBackground: false)(logits: $0[0], targets: targets) }
        assertGradient([logits], h: 1e-2, rtol: 2e-2, atol: 1e-5) {
            SoftTargetRegionalLoss(lambdaDice: 0, lambdaCE: 1, balanced: true)(logits: $0[0], targets: targets)
        }
    }
}
