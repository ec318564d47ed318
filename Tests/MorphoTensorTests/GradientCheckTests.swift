import Foundation
import XCTest
@testable import MorphoTensor

/// The finite-difference checker itself.
final class GradientCheckTests: XCTestCase, RandomOperands {
    var rng = RandomGenerator(seed: 11)

    func testGradientCheckCatchesAWrongDerivative() {
        // An op whose backward is deliberately off by a factor 2 must fail the check.
        let x = random([5])
        let r = GradientCheck.check([x]) { xs in
            let y = withoutGradients { xs[0] * xs[0] }
            return Tensor.record(y, inputs: [xs[0]]) { g in [withoutGradients { g * xs[0] * 4 }] }
        }
        XCTAssertFalse(r.passed)
    }
}
