import XCTest
@testable import MorphoTensor

/// The seeded generator behind every random tensor.
final class RandomGeneratorTests: XCTestCase {
    func testSeededRandomGeneratorIsReproducibleAndRestorable() {
        var a = RandomGenerator(seed: 42)
        var b = RandomGenerator(seed: 42)
        _ = a.next(); _ = b.next()
        XCTAssertEqual(a.next(), b.next(), "the same seed gives the same stream")
        var c = RandomGenerator(stateWords: a.stateWords)
        XCTAssertEqual(a.next(), c.next(), "a restored state continues the same stream")
        XCTAssertEqual(a.next(), c.next())
        var r = RandomGenerator(seed: 1)
        let xs = (0..<20000).map { _ in Double(r.normal()) }
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
    }
}
