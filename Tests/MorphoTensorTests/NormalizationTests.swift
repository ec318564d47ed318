import XCTest
import MorphoTestSupport
@testable import MorphoTensor

/// Asserts that `f`'s backward matches central differences and is not identically zero (shared
/// by the tests of the image operations: normalisation, convolution, pooling, sampling).
func assertGradientMatchesFiniteDifferences(
    _ inputs: [Tensor], h: Float = 1e-2, rtol: Double = 2e-2, atol: Double = 1e-4,
    file: StaticString = #filePath, line: UInt = #line, _ f: @escaping ([Tensor]) -> Tensor
) {
    let r = GradientCheck.check(inputs, h: h, rtol: rtol, atol: atol, f)
    XCTAssertTrue(r.passed, r.description, file: file, line: line)
    XCTAssertGreaterThan(r.maxReference, 0, "gradient is identically zero: the check would prove nothing", file: file, line: line)
}

final class NormalizationTests: XCTestCase {
    var rng = RandomGenerator(seed: 21)

    func random(_ shape: [Int], low: Float = -1, high: Float = 1) -> Tensor {
        Tensor.randomUniform(shape, low: low, high: high, using: &rng)
    }

    /// The textbook formula from the core ops, as an independent reference.
    func naiveNorm(_ x: Tensor, axes: [Int], gamma: Tensor?, beta: Tensor?, eps: Float, slope: Float?) -> Tensor {
        let mean = x.mean(axes: axes, keepDims: true)
        let centred = x - mean
        let variance = centred.squared().mean(axes: axes, keepDims: true)
        var y = centred / (variance + eps).sqrt()
        let affineShape = [1, x.shape[1]] + Array(repeating: 1, count: x.rank - 2)
        if let gamma { y = y * gamma.reshaped(affineShape) }
        if let beta { y = y + beta.reshaped(affineShape) }
        if let slope { y = y.leakyRelu(slope) }
        return y
    }

    func assertClose(_ a: Tensor, _ b: Tensor, tolerance: Float = 1e-4, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, file: file, line: line)
        var worst: Float = 0
        for i in 0..<a.count { worst = nanStrictMax(worst, Swift.abs(a[flat: i] - b[flat: i])) }
        XCTAssertLessThanOrEqual(worst, tolerance, file: file, line: line)
    }

    func testInstanceNormMatchesTheTextbookFormula() {
        let x = random([2, 3, 5, 7], low: -2, high: 3)
        let g = random([3], low: 0.5, high: 1.5), b = random([3])
        assertClose(instanceNorm(x, eps: 1e-5), naiveNorm(x, axes: [2, 3], gamma: nil, beta: nil, eps: 1e-5, slope: nil))
        assertClose(instanceNorm(x, weight: g, bias: b, rectifier: .leaky(0.2)),
                    naiveNorm(x, axes: [2, 3], gamma: g, beta: b, eps: 1e-5, slope: 0.2))
        let x3 = random([1, 2, 3, 4, 5])
        assertClose(instanceNorm(x3, rectifier: .relu), naiveNorm(x3, axes: [2, 3, 4], gamma: nil, beta: nil, eps: 1e-5, slope: 0))
    }

    func testInstanceNormOfAConstantPlaneIsTheBias() {
        let x = Tensor(shape: [1, 2, 4, 4], repeating: 3)
        let y = instanceNorm(x, weight: Tensor(shape: [2], data: [2, 2]), bias: Tensor(shape: [2], data: [0.5, -1]))
        XCTAssertEqual(y.scalars, [Float](repeating: 0.5, count: 16) + [Float](repeating: -1, count: 16))
    }

    func testInstanceNormGradients2DAnd3D() {
        let x2 = random([2, 3, 5, 4], low: -2, high: 2), x3 = random([1, 2, 3, 4, 5], low: -2, high: 2)
        let g = random([3], low: 0.5, high: 1.5), b = random([3], low: -0.5, high: 0.5)
        assertGradientMatchesFiniteDifferences([x2], h: 1e-2) { instanceNorm($0[0]) }
        assertGradientMatchesFiniteDifferences([x3], h: 1e-2) { instanceNorm($0[0]) }
        assertGradientMatchesFiniteDifferences([x2, g, b], h: 1e-2) { instanceNorm($0[0], weight: $0[1], bias: $0[2]) }
    }

    func testFusedRectifierGradients() {
        // Finite differences across the kink z = 0 are meaningless; h is small enough that the
        // few samples near it stay on one side.
        let x = random([2, 2, 6, 5], low: -2, high: 2)
        let g = random([2], low: 0.5, high: 1.5), b = random([2], low: -0.3, high: 0.3)
        assertGradientMatchesFiniteDifferences([x, g, b], h: 1e-3, rtol: 3e-2) {
            instanceNorm($0[0], weight: $0[1], bias: $0[2], rectifier: .leaky(0.2))
        }
        let slope = Tensor(shape: [1], data: [0.25])
        assertGradientMatchesFiniteDifferences([x, slope], h: 1e-3, rtol: 3e-2) { instanceNorm($0[0], rectifier: .learned($0[1])) }
    }

    func testBatchNormTrainingMatchesTheTextbookFormulaAndUpdatesRunningStatistics() {
        let x = random([3, 2, 4, 5], low: -1, high: 4)
        var rm = Tensor(shape: [2], data: [0.5, -0.5]), rv = Tensor(shape: [2], data: [2, 1])
        let y = batchNorm(x, runningMean: &rm, runningVar: &rv, training: true, momentum: 0.1)
        assertClose(y, naiveNorm(x, axes: [0, 2, 3], gamma: nil, beta: nil, eps: 1e-5, slope: nil))
        // PyTorch: running = 0.9·running + 0.1·batch, with the unbiased batch variance.
        for c in 0..<2 {
            let values = (0..<3).flatMap { n in (0..<20).map { Double(x[flat: n * 40 + c * 20 + $0]) } }
            let mu = values.reduce(0, +) / 60
            let unbiased = values.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / 59
            XCTAssertEqual(Double(rm[flat: c]), 0.9 * [0.5, -0.5][c] + 0.1 * mu, accuracy: 1e-5)
            XCTAssertEqual(Double(rv[flat: c]), 0.9 * [2, 1][c] + 0.1 * unbiased, accuracy: 1e-5)
        }
    }

    func testBatchNormEvalUsesRunningStatistics() {
        let x = random([2, 2, 3])
        var rm = Tensor(shape: [2], data: [0.5, -0.5]), rv = Tensor(shape: [2], data: [4, 0.25])
        let y = batchNorm(x, weight: Tensor(shape: [2], data: [2, 1]), bias: Tensor(shape: [2], data: [0, 1]),
                          runningMean: &rm, runningVar: &rv, training: false, eps: 0)
        for n in 0..<2 { for c in 0..<2 { for s in 0..<3 {
            let i = n * 6 + c * 3 + s
            let expected = [2, 1][c] * (x[flat: i] - [0.5, -0.5][c]) / [2, 0.5][c] + [0, 1][c]
            XCTAssertEqual(y[flat: i], Float(expected), accuracy: 1e-5)
        } } }
        XCTAssertEqual(rm.scalars, [0.5, -0.5], "eval mode must not move the running statistics")
    }

    func testBatchNormGradientsInTrainingAndEval() {
        let x = random([3, 2, 3, 4], low: -2, high: 2), x3 = random([2, 2, 2, 3, 3], low: -2, high: 2)
        let g = random([2], low: 0.5, high: 1.5), b = random([2], low: -0.5, high: 0.5)
        for training in [true, false] {
            assertGradientMatchesFiniteDifferences([x, g, b]) { xs in
                var rm = Tensor(shape: [2], data: [0.1, -0.2]), rv = Tensor(shape: [2], data: [1.5, 0.7])
                return batchNorm(xs[0], weight: xs[1], bias: xs[2], runningMean: &rm, runningVar: &rv, training: training)
            }
            assertGradientMatchesFiniteDifferences([x3]) { xs in
                var rm = Tensor(shape: [2], data: [0.1, -0.2]), rv = Tensor(shape: [2], data: [1.5, 0.7])
                return batchNorm(xs[0], runningMean: &rm, runningVar: &rv, training: training)
            }
        }
    }
}
