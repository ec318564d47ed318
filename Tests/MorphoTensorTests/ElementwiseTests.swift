import Foundation
import XCTest
@testable import MorphoTensor

/// Finite-difference checks of the elementwise operations.
final class ElementwiseTests: XCTestCase, RandomOperands {
    var rng = RandomGenerator(seed: 11)

    func testScalarArithmeticGradients() {
        let a = random([3, 4], low: 0.5, high: 2)
        assertGradient([a]) { 3 - $0[0] * 2 + 1 }
        assertGradient([a]) { 2 / $0[0] }
        assertGradient([a]) { -$0[0] / 4 }
    }

    func testElementwiseFunctionGradients() {
        let pos = random([2, 3, 5], low: 0.2, high: 2)
        let any = random([2, 3, 5], low: -2, high: 2)
        // Finite differences are meaningless across a kink: keep samples ≥ 0.05 away from 0, -0.5, 0.7.
        let kinks: [Float] = [0, -0.5, 0.7]
        let smooth = Tensor(shape: any.shape, data: any.scalars.map { v in
            kinks.contains { Swift.abs(v - $0) < 0.05 } ? v + 0.1 : v
        })
        assertGradient([any]) { $0[0].exp() }
        assertGradient([pos], h: 1e-3) { $0[0].log() }
        assertGradient([pos], h: 1e-3) { $0[0].pow(1.5) }
        assertGradient([any]) { $0[0].pow(2) }
        assertGradient([pos]) { $0[0].sqrt() }
        assertGradient([smooth], h: 1e-3) { $0[0].abs() }
        assertGradient([smooth], h: 1e-3) { $0[0].clamped(min: -0.5, max: 0.7) }
        assertGradient([smooth], h: 1e-3) { $0[0].relu() }
        assertGradient([smooth], h: 1e-3) { $0[0].leakyRelu(0.1) }
        assertGradient([any]) { $0[0].sigmoid() }
        assertGradient([any]) { $0[0].tanh() }
    }
}
