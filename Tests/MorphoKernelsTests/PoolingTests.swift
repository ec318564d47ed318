import MorphoKernels
import XCTest

final class PoolingTests: XCTestCase {
    private struct Pooled { var values: [Float]; var argmax: [Int32] }

    /// Direct window scan, windows enumerated in (z, y, x) order.
    private func naivePool(_ x: [Float], planes: Int, extent e: SpatialExtent, kernel k: Int, stride s: Int) -> (max: Pooled, mean: [Float]) {
        let o = pooledExtent(e, kernel: k, stride: s)
        let kd = e.rank == 3 ? k : 1, sd = e.rank == 3 ? s : 1
        var mx = Pooled(values: [], argmax: []), mean: [Float] = []
        for p in 0..<planes { for oz in 0..<o.d { for oy in 0..<o.h { for ox in 0..<o.w {
            var best = -Float.infinity, at = -1, sum = 0.0
            for a in 0..<kd { for b in 0..<k { for c in 0..<k {
                let i = ((oz * sd + a) * e.h + oy * s + b) * e.w + ox * s + c
                let v = x[p * e.count + i]
                sum += Double(v)
                if at < 0 || v > best { best = v; at = i }
            } } }
            mx.values.append(best); mx.argmax.append(Int32(at)); mean.append(Float(sum / Double(kd * k * k)))
        } } } }
        return (mx, mean)
    }

    private func pool(_ x: [Float], planes: Int, extent: SpatialExtent, kernel: Int, stride: Int) -> (max: Pooled, mean: [Float]) {
        let count = planes * pooledExtent(extent, kernel: kernel, stride: stride).count
        var mx = [Float](repeating: .nan, count: count), am = [Int32](repeating: -1, count: count)
        var mean = [Float](repeating: .nan, count: count)
        x.withUnsafeBufferPointer { s in
            mx.withUnsafeMutableBufferPointer { m in am.withUnsafeMutableBufferPointer { a in
                maxPool(s.baseAddress!, into: m.baseAddress!, argmax: a.baseAddress!, planes: planes, extent: extent, kernel: kernel, stride: stride)
            } }
            mean.withUnsafeMutableBufferPointer {
                averagePool(s.baseAddress!, into: $0.baseAddress!, planes: planes, extent: extent, kernel: kernel, stride: stride)
            }
        }
        return (Pooled(values: mx, argmax: am), mean)
    }

    private let cases: [(SpatialExtent, Int, Int)] = [
        (SpatialExtent(d: 8, h: 6, w: 10), 2, 2), (SpatialExtent(d: 7, h: 9, w: 5), 3, 2),
        (SpatialExtent(h: 9, w: 12), 2, 2), (SpatialExtent(h: 11, w: 7), 3, 1),
        // Wide enough for the 16-output SIMD path of kernel = stride = 2, plus a scalar tail.
        (SpatialExtent(d: 4, h: 6, w: 71), 2, 2), (SpatialExtent(h: 5, w: 66), 2, 2),
    ]

    func testPoolingMatchesDirectWindowScan() {
        var rng = SeededGenerator(seed: 41)
        for (extent, k, s) in cases {
            let x = rng.floats(3 * extent.count)
            let ours = withThreads(2) { pool(x, planes: 3, extent: extent, kernel: k, stride: s) }
            let ref = naivePool(x, planes: 3, extent: extent, kernel: k, stride: s)
            XCTAssertEqual(ours.max.values, ref.max.values, "\(extent) k\(k) s\(s)")
            XCTAssertEqual(ours.max.argmax, ref.max.argmax, "\(extent) k\(k) s\(s)")
            XCTAssertLessThan(maxAbsDifference(ours.mean, ref.mean), 1e-6)
        }
    }

    func testPooledExtentFloorsAndKeepsDepthIn2D() {
        XCTAssertEqual(pooledExtent(SpatialExtent(d: 9, h: 8, w: 7), kernel: 2, stride: 2), SpatialExtent(d: 4, h: 4, w: 3))
        XCTAssertEqual(pooledExtent(SpatialExtent(h: 8, w: 7), kernel: 3, stride: 2), SpatialExtent(h: 3, w: 3))
    }

    func testMaxPoolBackwardMatchesFiniteDifferences() {
        for (extent, k, s) in cases {
            // Distinct integers, shuffled: a step of 0.25 (exact in float) never changes a winner.
            var rng = SeededGenerator(seed: 42)
            let planes = 2
            let x = (0..<(planes * extent.count)).map { Float($0) }.shuffled(using: &rng)
            let outCount = planes * pooledExtent(extent, kernel: k, stride: s).count
            let g = rng.floats(outCount)
            let argmax = pool(x, planes: planes, extent: extent, kernel: k, stride: s).max.argmax
            var grad = [Float](repeating: .nan, count: x.count)
            g.withUnsafeBufferPointer { go in argmax.withUnsafeBufferPointer { am in grad.withUnsafeMutableBufferPointer { gi in
                maxPoolBackward(go.baseAddress!, argmax: am.baseAddress!, into: gi.baseAddress!, planes: planes, extent: extent, kernel: k, stride: s)
            } } }
            func loss(_ v: [Float]) -> Double { dot(pool(v, planes: planes, extent: extent, kernel: k, stride: s).max.values, g) }
            for i in stride(from: 0, to: x.count, by: 7) {
                var plus = x, minus = x
                plus[i] += 0.25; minus[i] -= 0.25
                XCTAssertEqual(Double(grad[i]), (loss(plus) - loss(minus)) / 0.5, accuracy: 1e-6, "\(extent) voxel \(i)")
            }
        }
    }

    func testAveragePoolBackwardIsTheAdjoint() {
        var rng = SeededGenerator(seed: 43)
        for (extent, k, s) in cases {
            let x = rng.floats(2 * extent.count)
            let y = rng.floats(2 * pooledExtent(extent, kernel: k, stride: s).count)
            var aty = [Float](repeating: .nan, count: x.count)
            y.withUnsafeBufferPointer { go in aty.withUnsafeMutableBufferPointer { gi in
                averagePoolBackward(go.baseAddress!, into: gi.baseAddress!, planes: 2, extent: extent, kernel: k, stride: s)
            } }
            assertAdjoint(pool(x, planes: 2, extent: extent, kernel: k, stride: s).mean, y, x, aty, "averagePool \(extent)")
        }
    }

    func testMaxPoolPropagatesNaN() {
        let x: [Float] = [1, .nan, 3, 4]
        let out = pool(x, planes: 1, extent: SpatialExtent(h: 2, w: 2), kernel: 2, stride: 2)
        XCTAssertTrue(out.max.values[0].isNaN)
        XCTAssertEqual(out.max.argmax[0], 1)
    }

}
