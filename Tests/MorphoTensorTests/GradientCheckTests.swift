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

    /// A NaN in one gradient entry (and so in the loss) must fail the check: `max` and `>` used to
    /// drop NaN from both the reference scale and the worst error, so such a check passed.
    func testGradientCheckFailsOnASingleNaNEntry() {
        let weights = Tensor(shape: [4], data: [1, 2, .nan, 3])
        let x = Tensor(shape: [4], data: [0.1, 0.2, 0.3, 0.4])
        let result = GradientCheck.check([x]) { ($0[0] * weights).sum() }
        XCTAssertFalse(result.passed, "\(result)")
        XCTAssertTrue(result.maxAbsError.isNaN || result.maxReference.isNaN, "\(result)")
    }

    /// The same function without the NaN passes, so the failure above is the NaN's.
    func testGradientCheckPassesTheSameFunctionWithoutNaN() {
        let weights = Tensor(shape: [4], data: [1, 2, 5, 3])
        let x = Tensor(shape: [4], data: [0.1, 0.2, 0.3, 0.4])
        XCTAssertTrue(GradientCheck.check([x]) { ($0[0] * weights).sum() }.passed)
    }
}
