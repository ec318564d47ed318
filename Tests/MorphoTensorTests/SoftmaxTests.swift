import Foundation
import XCTest
@testable import MorphoTensor

/// Softmax and log-softmax: definition and gradients.
final class SoftmaxTests: XCTestCase, RandomOperands {
    var rng = RandomGenerator(seed: 11)

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
}
