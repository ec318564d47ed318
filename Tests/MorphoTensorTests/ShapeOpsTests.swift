import Foundation
import XCTest
@testable import MorphoTensor

/// Concat, slice and pad: definitions and gradients.
final class ShapeOpsTests: XCTestCase, RandomOperands {
    var rng = RandomGenerator(seed: 11)

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
}
