import XCTest
import MorphoTensor
@testable import MorphoNN

/// Adam and AdamW against the torch update.
final class AdamTests: XCTestCase, OptimizerTrajectory {
    func testAdamStepsMatchTheTorchFormula() {
        let p = Parameter(Tensor(shape: [3], data: start))
        run(Adam([("w", p)], learningRate: 0.1, weightDecay: 0.05), p)
        assertValues(p, referenceAdam(lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, decay: 0.05, decoupled: false))
    }

    func testAdamWDecaysDecoupledFromTheGradient() {
        let p = Parameter(Tensor(shape: [3], data: start))
        run(AdamW([("w", p)], learningRate: 0.1, beta2: 0.99, weightDecay: 0.1), p)
        assertValues(p, referenceAdam(lr: 0.1, b1: 0.9, b2: 0.99, eps: 1e-8, decay: 0.1, decoupled: true))
    }

    func testAdamFitsALinearRegression() {
        var rng = RandomGenerator(seed: 5)
        let x = Tensor.randomNormal([64, 3], using: &rng)
        let truth: [Float] = [1.5, -2, 0.5]
        let y = Tensor(shape: [64, 1]) { p in
            for i in 0..<64 { p[i] = (0..<3).reduce(Float(0.3)) { $0 + x[flat: i * 3 + $1] * truth[$1] } }
        }
        let w = Parameter(.zeros([1, 3])), b = Parameter(.zeros([1, 1]))
        let adam = Adam([("w", w), ("b", b)], learningRate: 0.05)
        func loss() -> Tensor { ((x * w.value).sum(axes: [1], keepDims: true) + b.value - y).squared().mean() }
        let initial = loss().item
        for _ in 0..<400 {
            let l = loss()
            l.backward()
            adam.step()
            adam.zeroGrad()
        }
        let final = withoutGradients { loss().item }
        XCTAssertLessThan(final, initial * 1e-5)
        for j in 0..<3 { XCTAssertEqual(w.value[flat: j], truth[j], accuracy: 1e-2) }
        XCTAssertEqual(b.value[flat: 0], 0.3, accuracy: 1e-2)
    }
}
