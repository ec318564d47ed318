import XCTest
import MorphoTensor
@testable import MorphoNN

final class OptimizerTests: XCTestCase {
    let start: [Float] = [0.5, -1.2, 2.0]
    /// Three steps of gradients, as a training loop would produce them.
    let gradients: [[Float]] = [[0.3, -0.1, 0.02], [-0.25, 0.4, 0.05], [0.1, 0.1, -0.3]]

    func run(_ optimizer: Optimizer, _ p: Parameter) {
        for g in gradients {
            p.setGrad(Tensor(shape: [3], data: g))
            optimizer.step()
            optimizer.zeroGrad()
        }
    }

    /// torch.optim.Adam's update written out in Double.
    func referenceAdam(lr: Double, b1: Double, b2: Double, eps: Double, decay: Double, decoupled: Bool) -> [Double] {
        var theta = start.map(Double.init)
        var m = [Double](repeating: 0, count: 3), v = m
        for (k, grad) in gradients.enumerated() {
            let t = Double(k + 1)
            for j in 0..<3 {
                var g = Double(grad[j])
                if decoupled { theta[j] *= 1 - lr * decay } else { g += decay * theta[j] }
                m[j] = b1 * m[j] + (1 - b1) * g
                v[j] = b2 * v[j] + (1 - b2) * g * g
                let mHat = m[j] / (1 - pow(b1, t)), vHat = v[j] / (1 - pow(b2, t))
                theta[j] -= lr * mHat / (vHat.squareRoot() + eps)
            }
        }
        return theta
    }

    func assertValues(_ p: Parameter, _ expected: [Double], accuracy: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
        for (a, e) in zip(p.value.scalars, expected) { XCTAssertEqual(Double(a), e, accuracy: accuracy, file: file, line: line) }
    }

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

    func testSGDWithMomentumMatchesTheTorchFormula() {
        for (nesterov, dampening) in [(false, 0.0), (false, 0.3), (true, 0.0)] {
            let p = Parameter(Tensor(shape: [3], data: start))
            run(SGD([("w", p)], learningRate: 0.2, momentum: 0.9, dampening: Float(dampening), weightDecay: 0.01, nesterov: nesterov), p)
            var theta = start.map(Double.init), buf = [Double](repeating: 0, count: 3)
            for (k, grad) in gradients.enumerated() {
                for j in 0..<3 {
                    var g = Double(grad[j]) + 0.01 * theta[j]
                    buf[j] = k == 0 ? g : 0.9 * buf[j] + (1 - dampening) * g
                    g = nesterov ? g + 0.9 * buf[j] : buf[j]
                    theta[j] -= 0.2 * g
                }
            }
            assertValues(p, theta)
        }
    }

    func testParameterWithoutGradientIsLeftAlone() {
        let p = Parameter(Tensor(shape: [3], data: start)), q = Parameter(Tensor(shape: [1], data: [7]))
        let adam = Adam([("p", p), ("q", q)], learningRate: 0.1)
        p.setGrad(Tensor(shape: [3], data: [1, 1, 1]))
        adam.step()
        XCTAssertEqual(q.value.scalars, [7])
        XCTAssertEqual(adam.stateDictionary().map(\.0).sorted(), ["p.exp_avg", "p.exp_avg_sq", "p.step"])
    }

    func testResumedOptimizerContinuesTheSameTrajectory() throws {
        for make in [{ (p: [(String, Parameter)]) -> Optimizer in Adam(p, learningRate: 0.05) },
                     { (p: [(String, Parameter)]) -> Optimizer in SGD(p, learningRate: 0.05, momentum: 0.9) }] {
            let a = Parameter(Tensor(shape: [3], data: start))
            let optA = make([("w", a)])
            a.setGrad(Tensor(shape: [3], data: gradients[0]))
            optA.step()
            // Resume: a fresh parameter and optimiser loaded from the saved values and state.
            let b = Parameter(a.value)
            let optB = make([("w", b)])
            try optB.loadState(Dictionary(uniqueKeysWithValues: optA.stateDictionary()))
            for g in gradients.dropFirst() {
                a.setGrad(Tensor(shape: [3], data: g)); optA.step()
                b.setGrad(Tensor(shape: [3], data: g)); optB.step()
            }
            XCTAssertEqual(a.value.scalars, b.value.scalars)
        }
    }

    func testLoadingOptimizerStateOfTheWrongSizeFails() {
        let p = Parameter(Tensor(shape: [3], data: start))
        let adam = Adam([("w", p)])
        let bad = ["w.step": Tensor(shape: [1], data: [2]), "w.exp_avg": Tensor(shape: [2], data: [0, 0])]
        XCTAssertThrowsError(try adam.loadState(bad))
    }

    func testClipGradientNormRescalesToTheLimit() {
        let a = Parameter(.zeros([2])), b = Parameter(.zeros([1]))
        a.setGrad(Tensor(shape: [2], data: [3, 0]))
        b.setGrad(Tensor(shape: [1], data: [4]))
        let norm = clipGradientNorm([a, b], maxNorm: 1)
        XCTAssertEqual(norm, 5, accuracy: 1e-6)
        XCTAssertEqual(a.grad!.scalars[0], 0.6, accuracy: 1e-5)
        XCTAssertEqual(b.grad!.scalars[0], 0.8, accuracy: 1e-5)
        // Below the limit nothing changes.
        XCTAssertEqual(clipGradientNorm([a, b], maxNorm: 10), 1, accuracy: 1e-5)
        XCTAssertEqual(b.grad!.scalars[0], 0.8, accuracy: 1e-5)
    }

    func testLearningRateSchedulesFollowTheirFormulas() {
        XCTAssertEqual(LearningRateSchedule.constant.learningRate(base: 0.1, step: 500), 0.1)
        XCTAssertEqual(LearningRateSchedule.poly(power: 1, total: 100).learningRate(base: 0.1, step: 50), 0.05, accuracy: 1e-7)
        XCTAssertEqual(LearningRateSchedule.poly(power: 0.9, total: 100).learningRate(base: 0.1, step: 0), 0.1)
        XCTAssertEqual(LearningRateSchedule.poly(power: 0.9, total: 100).learningRate(base: 0.1, step: 100), 0)
        let cosine = LearningRateSchedule.cosine(total: 10, minimum: 0.01)
        XCTAssertEqual(cosine.learningRate(base: 0.1, step: 0), 0.1, accuracy: 1e-7)
        XCTAssertEqual(cosine.learningRate(base: 0.1, step: 5), 0.055, accuracy: 1e-7)
        XCTAssertEqual(cosine.learningRate(base: 0.1, step: 10), 0.01)
        let stepped = LearningRateSchedule.step(every: 3, gamma: 0.5)
        XCTAssertEqual(stepped.learningRate(base: 0.1, step: 2), 0.1)
        XCTAssertEqual(stepped.learningRate(base: 0.1, step: 7), 0.025, accuracy: 1e-8)
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
