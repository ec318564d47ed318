import XCTest
import MorphoTensor
@testable import MorphoNN

/// SGD with momentum against the torch update.
final class SGDTests: XCTestCase, OptimizerTrajectory {
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
}
