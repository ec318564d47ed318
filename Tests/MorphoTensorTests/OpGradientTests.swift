import Foundation
import XCTest
@testable import MorphoTensor

/// Finite-difference checks of every differentiable core operation.
final class OpGradientTests: XCTestCase {
    var rng = RandomGenerator(seed: 11)

    func random(_ shape: [Int], low: Float = -1, high: Float = 1) -> Tensor {
        Tensor.randomUniform(shape, low: low, high: high, using: &rng)
    }

    func assertGradient(_ inputs: [Tensor], h: Float = 1e-2, rtol: Double = 2e-2, file: StaticString = #filePath, line: UInt = #line,
                        _ f: @escaping ([Tensor]) -> Tensor) {
        let r = GradientCheck.check(inputs, h: h, rtol: rtol, f)
        XCTAssertTrue(r.passed, r.description, file: file, line: line)
        XCTAssertGreaterThan(r.maxReference, 0, "gradient is identically zero: the check would prove nothing", file: file, line: line)
    }

    func testBroadcastArithmeticGradients() {
        let a = random([2, 3, 4, 5]), b = random([1, 3, 1, 1]), c = random([2, 1, 4, 5], low: 0.5, high: 2)
        assertGradient([a, b]) { $0[0] + $0[1] }
        assertGradient([a, b]) { $0[0] - $0[1] }
        assertGradient([a, b]) { $0[0] * $0[1] }
        assertGradient([a, c]) { $0[0] / $0[1] }
        assertGradient([b, c]) { $0[0] * $0[1] }
    }

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

    func testReductionGradients() {
        let a = random([2, 3, 4, 5])
        assertGradient([a]) { $0[0].sum() }
        assertGradient([a]) { $0[0].mean() }
        assertGradient([a]) { $0[0].sum(axes: [2, 3]) }
        assertGradient([a]) { $0[0].mean(axes: [0, 2, 3], keepDims: true) }
        assertGradient([random([1, 3, 1, 1])]) { $0[0].broadcast(to: [2, 3, 4, 5]) }
    }

    func testSoftmaxGradients() {
        let a = random([2, 4, 3, 5], low: -3, high: 3)
        assertGradient([a]) { $0[0].softmax() }
        assertGradient([a]) { $0[0].logSoftmax() }
        // 37 columns: the backward's two 16-column vector blocks and its scalar tail.
        assertGradient([random([2, 3, 37], low: -3, high: 3)]) { $0[0].softmax() }
    }

    func testSoftmaxSumsToOneOverChannels() {
        let y = random([2, 3, 7], low: -50, high: 50).softmax()
        for n in 0..<2 { for s in 0..<7 {
            let total = (0..<3).reduce(Float(0)) { $0 + y[flat: n * 21 + $1 * 7 + s] }
            XCTAssertEqual(total, 1, accuracy: 1e-5)
        } }
    }

    /// The 16-column vector path (and its scalar tail) against the definition in double precision.
    func testSoftmaxAndLogSoftmaxMatchTheirDefinitionOnVectorBlocksAndTails() {
        let x = random([2, 3, 37], low: -60, high: 60)
        let y = x.softmax(), ly = x.logSoftmax()
        for n in 0..<2 { for s in 0..<37 {
            let xs = (0..<3).map { Double(x[flat: n * 111 + $0 * 37 + s]) }
            let m = xs.max()!, lse = m + Foundation.log(xs.map { Foundation.exp($0 - m) }.reduce(0, +))
            for c in 0..<3 {
                let i = n * 111 + c * 37 + s
                XCTAssertEqual(Double(y[flat: i]), Foundation.exp(xs[c] - lse), accuracy: 1e-6, "softmax at \(i)")
                XCTAssertEqual(Double(ly[flat: i]), xs[c] - lse, accuracy: 2e-5 * max(1, abs(xs[c] - lse)), "logSoftmax at \(i)")
            }
        } }
    }

    func testShapeOpGradients() {
        let a = random([2, 2, 3, 4]), b = random([2, 3, 3, 4])
        assertGradient([a, b]) { Tensor.concat([$0[0], $0[1]], axis: 1) }
        assertGradient([b]) { $0[0].slice(axis: 1, 1..<3) }
        assertGradient([a]) { $0[0].padded(axis: 3, before: 1, after: 2) }
        assertGradient([a]) { $0[0].padded(axis: 2, before: -1, after: 1) }
        assertGradient([a]) { $0[0].reshaped([4, -1]) }
        assertGradient([a]) { $0[0].centred(toSpatial: [5, 2]) }
    }

    func testConcatThenSliceRoundTrips() {
        let a = random([1, 2, 3]), b = random([1, 1, 3])
        let c = Tensor.concat([a, b], axis: 1)
        XCTAssertEqual(c.slice(axis: 1, 0..<2).scalars, a.scalars)
        XCTAssertEqual(c.slice(axis: 1, 2..<3).scalars, b.scalars)
    }

    func testLargeConcatSlicePadEqualElementwiseDefinitionsAcrossThreads() {
        // Three items: two threads split the three runs of each copy inside the middle one.
        let a = random([3, 3, 40, 50, 50]), b = random([3, 1, 40, 50, 50])
        let c = Tensor.concat([a, b], axis: 1)
        let run = 40 * 50 * 50
        for n in 0..<3 {
            for ch in 0..<4 {
                let expected = ch < 3 ? a.scalars[((n * 3 + ch) * run)..<((n * 3 + ch + 1) * run)] : b.scalars[(n * run)..<((n + 1) * run)]
                XCTAssertEqual(Array(c.scalars[((n * 4 + ch) * run)..<((n * 4 + ch + 1) * run)]), Array(expected), "item \(n) channel \(ch)")
            }
        }
        XCTAssertEqual(c.slice(axis: 1, 0..<3).scalars, a.scalars)
        XCTAssertEqual(c.slice(axis: 1, 3..<4).scalars, b.scalars)
        let p = b.padded(axis: 1, before: 2, after: 1)
        XCTAssertEqual(p.shape, [3, 4, 40, 50, 50])
        for n in 0..<3 {
            XCTAssertEqual(Set(p.scalars[((n * 4) * run)..<((n * 4 + 2) * run)]), [0])
            XCTAssertEqual(Array(p.scalars[((n * 4 + 2) * run)..<((n * 4 + 3) * run)]), Array(b.scalars[(n * run)..<((n + 1) * run)]))
            XCTAssertEqual(Set(p.scalars[((n * 4 + 3) * run)..<((n * 4 + 4) * run)]), [0])
        }
    }

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
