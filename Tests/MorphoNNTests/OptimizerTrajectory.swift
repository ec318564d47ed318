import XCTest
import MorphoTensor
@testable import MorphoNN

/// Test cases that step an optimizer through three fixed gradients from a fixed start.
protocol OptimizerTrajectory {}

extension OptimizerTrajectory {
    var start: [Float] { [0.5, -1.2, 2.0] }

    /// Three steps of gradients, as a training loop would produce them.
    var gradients: [[Float]] { [[0.3, -0.1, 0.02], [-0.25, 0.4, 0.05], [0.1, 0.1, -0.3]] }

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
}
