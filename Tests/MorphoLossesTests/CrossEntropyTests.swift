import Foundation
import MorphoKernels
@testable import MorphoLosses
import MorphoTensor
import XCTest
import MorphoTestSupport

final class CrossEntropyTests: XCTestCase {
    var rng = RandomGenerator(seed: 22)

    /// Σ w_y (−log softmax_y) / Σ w_y in Double.
    func naiveCE(_ logits: Tensor, _ labels: Tensor, weights: [Double]?) -> Double {
        let n = logits.shape[0], c = logits.shape[1], s = logits.spatialCount
        var num = 0.0, den = 0.0
        for item in 0..<n {
            for v in 0..<s {
                let xs = (0..<c).map { Double(logits[flat: (item * c + $0) * s + v]) }
                let m = xs.max()!
                let lse = m + Foundation.log(xs.map { Foundation.exp($0 - m) }.reduce(0, +))
                let y = Int(labels[flat: item * s + v])
                let w = weights?[y] ?? 1
                num += w * (lse - xs[y])
                den += w
            }
        }
        return num / den
    }

    func testCrossEntropyMatchesNaiveReference() {
        let logits = Tensor.randomNormal([2, 4, 5, 7], std: 3, using: &rng)
        let labels = randomLabels([2, 5, 7], classes: 4, using: &rng)
        assertClose(CrossEntropyLoss()(logits: logits, labels: labels).item, naiveCE(logits, labels, weights: nil), 1e-5, "CE")
        let w: [Float] = [0.5, 2, 1, 3]
        assertClose(CrossEntropyLoss(classWeights: w)(logits: logits, labels: labels).item,
                    naiveCE(logits, labels, weights: w.map(Double.init)), 1e-5, "weighted CE")
    }

    func testBalancedWeightsAreReciprocalCounts() {
        let labels = Tensor(shape: [1, 2, 3], data: [0, 0, 0, 1, 1, 0])
        let w = BalancedCrossEntropyLoss(eps: 1e-6).classWeights(labels: labels, classes: 3)
        XCTAssertEqual(w[0], 1 / (4 + 1e-6), accuracy: 1e-7)
        XCTAssertEqual(w[1], 1 / (2 + 1e-6), accuracy: 1e-7)
        XCTAssertEqual(w[2], 1e6, accuracy: 1)   // absent class: weight 1/eps, used by no voxel
    }

    func testBalancedCrossEntropyGivesEveryClassTheSameTotalWeight() {
        let logits = Tensor.randomNormal([2, 3, 4, 4, 4], using: &rng)
        let labels = randomLabels([2, 4, 4, 4], classes: 3, using: &rng)
        let loss = BalancedCrossEntropyLoss()(logits: logits, labels: labels)
        // Σ_c (1/n_c) Σ_{v ∈ c} ce_v / Σ_c 1 = the mean over classes of the per-class mean CE.
        var perClass = [Double](repeating: 0, count: 3), counts = perClass
        for item in 0..<2 {
            for v in 0..<64 {
                let xs = (0..<3).map { Double(logits[flat: (item * 3 + $0) * 64 + v]) }
                let lse = Foundation.log(xs.map(Foundation.exp).reduce(0, +))
                let y = Int(labels[flat: item * 64 + v])
                perClass[y] += lse - xs[y]
                counts[y] += 1
            }
        }
        let expected = zip(perClass, counts).map { $0 / $1 }.reduce(0, +) / 3
        assertClose(loss.item, expected, 1e-4, "balanced CE")
    }

    func testCrossEntropyGradients() {
        let labels = randomLabels([2, 6, 5], classes: 3, using: &rng)
        let logits = Tensor.randomNormal([2, 3, 6, 5], using: &rng)
        assertGradient([logits]) { CrossEntropyLoss()(logits: $0[0], labels: labels) }
        assertGradient([logits]) { BalancedCrossEntropyLoss()(logits: $0[0], labels: labels) }
    }

    func testSingleClassBatchIsThePlainMeanCrossEntropyWithItsGradient() {
        let logits = Tensor.randomNormal([1, 2, 3, 3], using: &rng).requiringGrad()
        let loss = BalancedCrossEntropyLoss()(logits: logits, labels: Tensor.ones([1, 3, 3]))
        // Every voxel is class 1 with weight 1/(9 + eps): L = (1/9) Σ_v (log Σ_c e^{x_cv} − x_1v),
        // ∂L/∂x_cv = (softmax_cv − [c = 1]) / 9.
        var expected = 0.0
        var gradient = [Double](repeating: 0, count: 18)
        for v in 0..<9 {
            let x0 = Double(logits[flat: v]), x1 = Double(logits[flat: 9 + v])
            let lse = Foundation.log(Foundation.exp(x0) + Foundation.exp(x1))
            expected += (lse - x1) / 9
            gradient[v] = Foundation.exp(x0 - lse) / 9
            gradient[9 + v] = (Foundation.exp(x1 - lse) - 1) / 9
        }
        assertClose(loss.item, expected, 1e-5, "single-class balanced CE")
        loss.backward()
        for (k, g) in logits.grad!.scalars.enumerated() { assertClose(g, gradient[k], 1e-5, "gradient \(k)") }
    }

    func testVectorExpAndLogMatchLibm() {
        var worstExp = 0.0, worstLog = 0.0
        for start in stride(from: -87.0, to: 88.0, by: 0.37) {
            var x = Lanes()
            for k in 0..<16 { x[k] = Float(start + Double(k) * 0.0231) }
            let e = vexp(x)
            for k in 0..<16 {
                let ref = Foundation.exp(Double(x[k]))
                worstExp = nanStrictMax(worstExp, abs(Double(e[k]) - ref) / ref)
            }
            let positive = vexp(x * 0.25) + 1e-3
            let l = vlog(positive)
            for k in 0..<16 {
                let ref = Foundation.log(Double(positive[k]))
                worstLog = nanStrictMax(worstLog, abs(Double(l[k]) - ref) / max(abs(ref), 1))
            }
        }
        XCTAssertLessThan(worstExp, 3e-7)
        XCTAssertLessThan(worstLog, 3e-7)
        XCTAssertEqual(vexp(Lanes(repeating: -100))[0], 0)
        XCTAssertEqual(vexp(Lanes(repeating: 0))[0], 1)
        XCTAssertEqual(vlog(Lanes(repeating: 1))[0], 0)
    }
}
