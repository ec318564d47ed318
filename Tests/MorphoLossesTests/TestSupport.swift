import MorphoTensor
import XCTest

/// Finite-difference check of `f`'s backward on `inputs` (central differences, Float32
/// evaluation, Double sums). Fails if the gradient is identically zero, which would prove nothing.
func assertGradient(
    _ inputs: [Tensor], h: Float = 1e-2, rtol: Double = 2e-2, atol: Double = 1e-4, maxProbes: Int = 200,
    file: StaticString = #filePath, line: UInt = #line, _ f: @escaping ([Tensor]) -> Tensor
) {
    let r = GradientCheck.check(inputs, h: h, rtol: rtol, atol: atol, maxProbes: maxProbes, f)
    XCTAssertTrue(r.passed, r.description, file: file, line: line)
    XCTAssertGreaterThan(r.maxReference, 0, "gradient is identically zero: the check proves nothing", file: file, line: line)
}

/// A label map `[shape]` of random classes in `0..<classes`.
func randomLabels(_ shape: [Int], classes: Int, using rng: inout RandomGenerator) -> Tensor {
    Tensor(shape: shape) { p in
        for i in 0..<shape.reduce(1, *) { p[i] = Float(min(classes - 1, Int(rng.uniform() * Float(classes)))) }
    }
}

/// `[N, C, spatial...]` probabilities: softmax of random logits.
func randomProbabilities(_ shape: [Int], using rng: inout RandomGenerator) -> Tensor {
    withoutGradients { Tensor.randomNormal(shape, using: &rng).softmax() }
}

/// Asserts |a − b| ≤ tol · max(1, |b|).
func assertClose(_ a: Float, _ b: Double, _ tol: Double = 1e-5, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertLessThanOrEqual(abs(Double(a) - b), tol * max(1, abs(b)), "\(message): \(a) vs \(b)", file: file, line: line)
}
