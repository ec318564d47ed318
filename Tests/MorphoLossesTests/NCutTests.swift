import Foundation
import MorphoLosses
import MorphoTensor
import XCTest

final class NCutTests: XCTestCase {
    var rng = RandomGenerator(seed: 26)

    /// Seed 001's NCutLoss2D as executed, in Double loops.
    func naiveNCut(_ probs: Tensor, _ image: Tensor, sigma2: Double) -> Double {
        let n = probs.shape[0], k = probs.shape[1], s = probs.spatialCount
        var loss = 0.0
        for c in 0..<k {
            var num = 0.0, den = 0.0
            for item in 0..<n {
                var ip = 0.0, pp = 0.0
                for v in 0..<s {
                    let p = Double(probs[flat: (item * k + c) * s + v])
                    ip += Double(image[flat: item * s + v]) * p
                    pp += p
                }
                let mean = (ip / Double(s)) / (pp / Double(s) + 1e-5)
                for v in 0..<s {
                    let p = Double(probs[flat: (item * k + c) * s + v])
                    let diff = Foundation.pow(Double(image[flat: item * s + v]) - mean, 2)
                    let w = Foundation.exp(-diff * diff / (sigma2 * sigma2))
                    num += p * p * w
                    den += p * w
                }
            }
            loss += abs(num / (den + 1e-6))
        }
        return Double(k) - loss
    }

    func testSoftNCutMatchesTheSeedAsExecuted() {
        for shape in [[2, 3, 6, 7], [1, 2, 4, 5, 3]] {
            let probs = randomProbabilities(shape, using: &rng)
            let image = Tensor.randomUniform([shape[0], 1] + Array(shape.dropFirst(2)), low: 0, high: 8, using: &rng)
            assertClose(SoftNCutLoss(sigma2: 10)(probs: probs, image: image).item, naiveNCut(probs, image, sigma2: 10), 1e-5, "\(shape)")
        }
    }

    func testSoftNCutGradient() {
        let image = Tensor.randomUniform([2, 1, 5, 4], low: 0, high: 4, using: &rng)
        assertGradient([randomProbabilities([2, 3, 5, 4], using: &rng)]) { SoftNCutLoss(sigma2: 3)(probs: $0[0], image: image) }
    }

    func testAnEmptyClassGivesTheSeedsValueAndTheOtherClassesTheirGradient() {
        var probs = randomProbabilities([1, 3, 4, 4], using: &rng)
        probs.withUnsafeMutablePointer { p in
            for v in 0..<16 { p[32 + v] = 0; let s = p[v] + p[16 + v]; p[v] /= s; p[16 + v] /= s }
        }
        let image = Tensor.randomUniform([1, 1, 4, 4], using: &rng)
        let leaf = probs.requiringGrad()
        let loss = SoftNCutLoss()(probs: leaf, image: image)
        // The empty class adds 0/(0 + 1e-6) = 0 to the sum: the seed's formula in Double.
        assertClose(loss.item, naiveNCut(probs, image, sigma2: 10), 1e-5, "empty class")
        loss.backward()
        XCTAssertTrue(leaf.grad!.isFinite)
        // The classes that hold probability: their gradient against finite differences, with the
        // empty class held at 0 (there |ratio| has a kink, where no derivative exists to compare).
        let held = Tensor.zeros([1, 1, 4, 4])
        let occupied = Tensor(shape: [1, 2, 4, 4], data: Array(probs.scalars[0..<32]))
        assertGradient([occupied], h: 1e-3) { SoftNCutLoss()(probs: Tensor.concat([$0[0], held], axis: 1), image: image) }
    }
}
