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

    func testInPlaceAccumulationLeavesASharedFirstGradientAlone() {
        // `p + q` hands one gradient tensor to both leaves; p's second contribution (from 2p)
        // must not be added into the storage q's gradient shares. Large enough for two threads.
        let n = 100_000
        for sharedFirst in [false, true] {
            let p = Tensor(shape: [n], repeating: 1).requiringGrad(), q = Tensor(shape: [n], repeating: 2).requiringGrad()
            (sharedFirst ? p * 2 + (p + q) : (p + q) + p * 2).sum().backward()
            XCTAssertEqual(Set(p.grad!.scalars), [3], "shared gradient first: \(sharedFirst)")
            XCTAssertEqual(Set(q.grad!.scalars), [1], "shared gradient first: \(sharedFirst)")
        }
        // A third and fourth contribution land in place on p's own sum.
        let r = Tensor(shape: [n], repeating: 1).requiringGrad()
        (r + r * 2 + r * 3 + r * 4).sum().backward()
        XCTAssertEqual(Set(r.grad!.scalars), [10])
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

    /// An op recorded with `recordOwningGradient` holds the only reference to the gradient it is
    /// handed in a chain (so it may overwrite it), and sees it shared when `a + b` hands the
    /// same tensor to another node too, whose gradient must then keep its values.
    func testOwningBackwardHoldsAChainsGradientAloneButSeesASharedOneShared() {
        final class Seen { var unique: [Bool] = [] }
        let seen = Seen()
        // y = 2x, with a backward that doubles the gradient in place when it may.
        func double(_ x: Tensor) -> Tensor {
            let y = Tensor(shape: x.shape) { p in for i in 0..<x.count { p[i] = 2 * x[flat: i] } }
            return Tensor.recordOwningGradient(y, inputs: [x]) { g in
                let unique = g.hasUniqueStorage()
                seen.unique.append(unique)
                if unique {
                    let n = g.count
                    g.withUnsafeMutablePointer { p in for i in 0..<n { p[i] *= 2 } }
                    return [g]
                }
                return [g * 2]
            }
        }
        let x = Tensor(shape: [3], data: [1, 2, 3]).requiringGrad()
        (double(x) * 3).sum().backward()
        XCTAssertEqual(seen.unique, [true])
        XCTAssertEqual(x.grad?.scalars, [6, 6, 6])

        let u = Tensor(shape: [3], data: [1, 2, 3]).requiringGrad(), z = Tensor(shape: [3], repeating: 0).requiringGrad()
        ((double(u) + z) * Tensor(shape: [3], data: [1, 2, 3])).sum().backward()
        XCTAssertEqual(seen.unique, [true, false])
        XCTAssertEqual(u.grad?.scalars, [2, 4, 6])
        XCTAssertEqual(z.grad?.scalars, [1, 2, 3], "the shared gradient is left alone")
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
}
