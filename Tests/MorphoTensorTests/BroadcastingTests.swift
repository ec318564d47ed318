import Foundation
import XCTest
@testable import MorphoTensor

/// Finite-difference checks of broadcasting arithmetic.
final class BroadcastingTests: XCTestCase, RandomOperands {
    var rng = RandomGenerator(seed: 11)

    func testBroadcastArithmeticGradients() {
        let a = random([2, 3, 4, 5]), b = random([1, 3, 1, 1]), c = random([2, 1, 4, 5], low: 0.5, high: 2)
        assertGradient([a, b]) { $0[0] + $0[1] }
        assertGradient([a, b]) { $0[0] - $0[1] }
        assertGradient([a, b]) { $0[0] * $0[1] }
        assertGradient([a, c]) { $0[0] / $0[1] }
        assertGradient([b, c]) { $0[0] * $0[1] }
    }
}
