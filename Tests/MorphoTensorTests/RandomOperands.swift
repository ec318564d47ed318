import Foundation
import XCTest
@testable import MorphoTensor

/// Test cases that draw random operands from their own `rng` (one fresh generator per test)
/// and check gradients by finite differences.
protocol RandomOperands: AnyObject {
    var rng: RandomGenerator { get set }
}

extension RandomOperands {
    func random(_ shape: [Int], low: Float = -1, high: Float = 1) -> Tensor {
        Tensor.randomUniform(shape, low: low, high: high, using: &rng)
    }

    func assertGradient(_ inputs: [Tensor], h: Float = 1e-2, rtol: Double = 2e-2, file: StaticString = #filePath, line: UInt = #line,
                        _ f: @escaping ([Tensor]) -> Tensor) {
        let r = GradientCheck.check(inputs, h: h, rtol: rtol, f)
        XCTAssertTrue(r.passed, r.description, file: file, line: line)
        XCTAssertGreaterThan(r.maxReference, 0, "gradient is identically zero: the check would prove nothing", file: file, line: line)
    }
}
