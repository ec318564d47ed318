import XCTest
@testable import MorphoTensor

final class AutogradTests: XCTestCase {
    func testBackwardOfSumOfProductsGivesTheOtherFactor() {
        let a = Tensor(shape: [3], data: [1, 2, 3]).requiringGrad()
        let b = Tensor(shape: [3], data: [4, 5, 6]).requiringGrad()
        (a * b).sum().backward()
        XCTAssertEqual(a.grad?.scalars, [4, 5, 6])
        XCTAssertEqual(b.grad?.scalars, [1, 2, 3])
    }

    func testGradientsAccumulateWhenATensorIsUsedTwice() {
        let x = Tensor(shape: [2], data: [3, -1]).requiringGrad()
        (x * x + x).sum().backward()   // d/dx (x² + x) = 2x + 1
        XCTAssertEqual(x.grad?.scalars, [7, -1])
    }

    func testNoGradientModeRecordsNothing() {
        let x = Tensor(shape: [2], data: [1, 2]).requiringGrad()
        let y = withoutGradients { (x * 2).sum() }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertEqual(y.item, 6)
    }

    func testBackwardReleasesIntermediateClosures() {
        let x = Tensor(shape: [4], data: [1, 2, 3, 4]).requiringGrad()
        let h = (x * x).exp()
        let loss = h.sum()
        weak var hiddenNode = h.node
        loss.backward()
        XCTAssertNil(hiddenNode?.backwardFn, "closure of an intermediate node must be dropped after backward")
        XCTAssertNotNil(x.grad)
    }

    func testCopyOnWriteKeepsValueSemantics() {
        let a = Tensor(shape: [3], data: [1, 2, 3])
        var b = a
        b.withUnsafeMutablePointer { $0[0] = 9 }
        XCTAssertEqual(a.scalars, [1, 2, 3])
        XCTAssertEqual(b.scalars, [9, 2, 3])
    }

    func testDeepChainDoesNotOverflowTheStack() {
        var x = Tensor(shape: [1], data: [1]).requiringGrad()
        let leaf = x
        for _ in 0..<20000 { x = x * 1.0 }
        x.sum().backward()
        XCTAssertEqual(leaf.grad?.item, 1)
    }

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

final class StoragePoolTests: XCTestCase {
    func testLargeBuffersAreReusedBySize() {
        StoragePool.drain()
        let count = 1 << 20
        var first: UnsafeMutablePointer<Float>?
        do {
            let t = Tensor(shape: [count], repeating: 1)
            first = t.storage.pointer
        }
        XCTAssertEqual(StoragePool.idleByteCount, count * 4, "a freed large buffer waits in the pool")
        let again = Tensor(shape: [count], repeating: 2)
        XCTAssertEqual(again.storage.pointer, first, "the next request of the same size gets it back")
        XCTAssertEqual(again[flat: count - 1], 2)
        XCTAssertEqual(StoragePool.idleByteCount, 0)
    }

    func testSmallBuffersBypassThePool() {
        StoragePool.drain()
        do { _ = Tensor(shape: [100], repeating: 1) }
        XCTAssertEqual(StoragePool.idleByteCount, 0)
    }
}
