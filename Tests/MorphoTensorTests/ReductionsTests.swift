import Foundation
import XCTest
@testable import MorphoTensor

/// Finite-difference checks of the reductions.
final class ReductionsTests: XCTestCase, RandomOperands {
    var rng = RandomGenerator(seed: 11)

    func testReductionGradients() {
        let a = random([2, 3, 4, 5])
        assertGradient([a]) { $0[0].sum() }
        assertGradient([a]) { $0[0].mean() }
        assertGradient([a]) { $0[0].sum(axes: [2, 3]) }
        assertGradient([a]) { $0[0].mean(axes: [0, 2, 3], keepDims: true) }
        assertGradient([random([1, 3, 1, 1])]) { $0[0].broadcast(to: [2, 3, 4, 5]) }
    }
}
