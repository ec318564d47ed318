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

    func testHugePageBuffersAre2MiBAlignedWritableAndReturnedWhole() {
        StoragePool.drain()
        // 5 MiB + 4 bytes: above the huge-page threshold, not a multiple of 2 MiB.
        let count = (5 << 20) / 4 + 1
        do {
            var t = Tensor(shape: [count], repeating: 3)
            XCTAssertEqual(UInt(bitPattern: t.storage.pointer) % UInt(2 << 20), 0, "huge-page buffers start on a 2 MiB boundary")
            t.withUnsafeMutablePointer { p in p[count - 1] = 7 }
            XCTAssertEqual(t[flat: 0], 3)
            XCTAssertEqual(t[flat: count - 1], 7, "the last float of a non-multiple size is mapped")
        }
        XCTAssertEqual(StoragePool.idleByteCount, count * 4)
        StoragePool.drain()
        XCTAssertEqual(StoragePool.idleByteCount, 0, "drained huge-page buffers are unmapped")
    }

    func testLiveAndPeakBytesCountTensorStorageNotIdleBuffers() {
        StoragePool.drain()
        let before = StoragePool.liveBytes
        StoragePool.resetPeak()
        do {
            let a = Tensor(shape: [1 << 18], repeating: 1)  // 1 MiB
            let b = Tensor(shape: [1 << 18], repeating: 2)
            XCTAssertEqual(StoragePool.liveBytes - before, 2 << 20)
            XCTAssertEqual(a[flat: 0] + b[flat: 0], 3)
        }
        XCTAssertEqual(StoragePool.liveBytes, before, "freed tensors stop counting even while their buffers wait in the pool")
        XCTAssertEqual(StoragePool.peakLiveBytes - before, 2 << 20)
        XCTAssertEqual(StoragePool.idleByteCount, 2 << 20)
    }

    func testIdleBuffersAreReleasedBeforeTheMappedTotalOutgrowsThePeakOfLiveTensorsPlusSlack() {
        let saved = (StoragePool.headroom, StoragePool.capacityFloor, StoragePool.minimumSlack)
        defer { (StoragePool.headroom, StoragePool.capacityFloor, StoragePool.minimumSlack) = saved; StoragePool.drain() }
        StoragePool.capacityFloor = 0
        StoragePool.minimumSlack = 0
        let eight = 2 << 20  // 8 MiB of floats
        // (factor, slack): no bound; 1.0 × the peak; 1.0 × the peak but at least 64 MiB above it.
        for (headroom, slack) in [(0.0, 0), (1.0, 0), (1.0, 64 << 20)] {
            StoragePool.headroom = headroom
            StoragePool.minimumSlack = slack
            StoragePool.drain()
            StoragePool.resetPeak()
            let base = StoragePool.liveBytes
            do {
                let a = Tensor(shape: [eight], repeating: 1), b = Tensor(shape: [eight], repeating: 2)
                XCTAssertEqual(a[flat: 0] + b[flat: 0], 3)
            }
            XCTAssertEqual(StoragePool.idleByteCount, 16 << 20, "both freed buffers wait in the pool")
            // 20 MiB fits neither idle buffer: mapping it fresh beside them would hold 36 MiB,
            // over 1.0 × the new peak (20 MiB plus whatever other tests keep alive, far below
            // 16 MiB), so the bound releases idle buffers first; without it both stay.
            let c = Tensor(shape: [5 << 20], repeating: 3)
            XCTAssertEqual(c[flat: (5 << 20) - 1], 3)
            if headroom == 0 || slack > 0 {
                XCTAssertEqual(StoragePool.idleByteCount, 16 << 20, "36 MiB mapped is within the bound")
            } else {
                XCTAssertLessThan(StoragePool.idleByteCount, 16 << 20)
                XCTAssertGreaterThanOrEqual(StoragePool.peakLiveBytes - base, 20 << 20)
            }
        }
    }

    func testASmallerRequestReusesAnIdleBufferOfAtMostTwiceItsSize() {
        StoragePool.drain()
        let big = 1 << 20  // 4 MiB
        var first: UnsafeMutablePointer<Float>?
        do { first = Tensor(shape: [big], repeating: 1).storage.pointer }
        do {
            let quarter = Tensor(shape: [big / 4], repeating: 0)
            XCTAssertNotEqual(quarter.storage.pointer, first, "a buffer over twice the request stays for larger requests")
        }
        do {
            let smaller = Tensor(shape: [big * 3 / 4], repeating: 5)
            XCTAssertEqual(smaller.storage.pointer, first, "a request of 3/4 the size reuses the idle buffer")
            XCTAssertEqual(smaller[flat: big * 3 / 4 - 1], 5)
        }
        // Back in the pool under its real size: a full-size request finds it again.
        let again = Tensor(shape: [big], repeating: 2)
        XCTAssertEqual(again.storage.pointer, first)
    }

    func testSmallBuffersBypassThePool() {
        StoragePool.drain()
        do { _ = Tensor(shape: [100], repeating: 1) }
        XCTAssertEqual(StoragePool.idleByteCount, 0)
    }
}
