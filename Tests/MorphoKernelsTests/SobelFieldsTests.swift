import MorphoKernels
import XCTest

/// The one-sweep Sobel gradient and divergence against the separable filters they fuse.
final class SobelFieldsTests: XCTestCase {
    private let extents = [
        SpatialExtent(d: 7, h: 9, w: 37), SpatialExtent(d: 1, h: 5, w: 16), SpatialExtent(d: 3, h: 1, w: 1),
        SpatialExtent(h: 11, w: 21), SpatialExtent(h: 1, w: 33), SpatialExtent(h: 6, w: 1),
    ]

    private func correlate(_ x: [Float], planes: Int, extent: SpatialExtent, axis: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { o in
            separableCorrelate(s.baseAddress!, into: o.baseAddress!, planes: planes, extent: extent,
                               kernel: .sobel(axis: axis, rank: extent.rank))
        } }
        return out
    }

    /// Runs `sobelGradient`, returning (components, sum of squares).
    private func gradient(_ x: [Float], planes: Int, extent: SpatialExtent) -> ([[Float]], [Float]) {
        let n = x.count
        let outs = (0..<extent.rank).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: n) }
        let squares = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { outs.forEach { $0.deallocate() }; squares.deallocate() }
        for o in outs { o.initialize(repeating: .nan, count: n) }
        squares.initialize(repeating: .nan, count: n)
        x.withUnsafeBufferPointer { s in
            sobelGradient(s.baseAddress!, into: outs, sumOfSquares: squares, planes: planes, extent: extent)
        }
        return (outs.map { Array(UnsafeBufferPointer(start: $0, count: n)) }, Array(UnsafeBufferPointer(start: squares, count: n)))
    }

    func testSobelGradientMatchesTheSeparableSobelOfEveryAxis() {
        var rng = SeededGenerator(seed: 71)
        for extent in extents {
            let planes = 3, x = rng.floats(planes * extent.count)
            let (components, squares) = withThreads(2) { gradient(x, planes: planes, extent: extent) }
            var expectedSquares = [Float](repeating: 0, count: x.count)
            for axis in 0..<extent.rank {
                let ref = correlate(x, planes: planes, extent: extent, axis: axis)
                XCTAssertLessThan(maxAbsDifference(components[axis], ref), 1e-5, "axis \(axis) of \(extent)")
                for i in ref.indices { expectedSquares[i] += ref[i] * ref[i] }
            }
            XCTAssertLessThan(maxAbsDifference(squares, expectedSquares), 1e-4, "sum of squares of \(extent)")
        }
    }

    func testSobelDivergenceIsTheSumOfSobelsOfTheWeightedFields() {
        var rng = SeededGenerator(seed: 72)
        for extent in extents {
            for weighted in [true, false] {
                let planes = 2, n = planes * extent.count
                let fields = (0..<extent.rank).map { _ in rng.floats(n) }
                let g = rng.floats(n, in: 0...1)
                var expected = [Float](repeating: 0, count: n)
                for axis in 0..<extent.rank {
                    let product = weighted ? zip(fields[axis], g).map { $0 * $1 } : fields[axis]
                    let ref = correlate(product, planes: planes, extent: extent, axis: axis)
                    for i in ref.indices { expected[i] += ref[i] }
                }
                var out = [Float](repeating: .nan, count: n)
                let pointers = fields.map { f -> UnsafeMutablePointer<Float> in
                    let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
                    p.initialize(from: f, count: n)
                    return p
                }
                defer { pointers.forEach { $0.deallocate() } }
                withThreads(2) {
                    g.withUnsafeBufferPointer { gp in out.withUnsafeMutableBufferPointer { o in
                        sobelDivergence(pointers.map { UnsafePointer($0) }, weight: weighted ? gp.baseAddress! : nil,
                                        into: o.baseAddress!, planes: planes, extent: extent)
                    } }
                }
                XCTAssertLessThan(maxAbsDifference(out, expected), 1e-4, "\(extent), weighted \(weighted)")
            }
        }
    }
}
