import XCTest
@testable import MorphoTensor

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
