import MorphoTensor
import XCTest
@testable import MorphoTrain

final class SlidingWindowTests: XCTestCase {
    func testWindowOriginsTileTheAxisWithTheLastFlushToTheEnd() {
        let sw = SlidingWindow(window: [8, 8, 8], overlap: 0.5, blending: .gaussian, batchSize: 2, dims: 3)
        XCTAssertEqual(sw.origins(length: 20, window: 8), [0, 4, 8, 12])
        XCTAssertEqual(sw.origins(length: 8, window: 8), [0])
        XCTAssertEqual(sw.origins(length: 5, window: 8), [0])
        XCTAssertEqual(sw.origins(length: 9, window: 8), [0, 1])
    }

    /// Logits `[x, −x]` per voxel: the softmax is pointwise, so any tiling must reproduce it.
    func pointwise(_ t: Tensor) -> Tensor { Tensor.concat([t, -t], axis: 1) }

    func testBlendedPredictionOfAPointwiseNetworkIsExact() {
        var rng = RandomGenerator(seed: 2)
        let image = VoxelArray(data: (0..<(10 * 13 * 11)).map { _ in rng.normal() }, channels: 1, shape: [10, 13, 11], spacing: [1, 1, 1])
        let direct = Tensor(shape: [1, 1, 10, 13, 11], data: image.data)
        let expected = pointwise(direct).softmax().scalars
        for blending in BlendingKind.allCases {
            let sw = SlidingWindow(window: [4, 8, 4], overlap: 0.5, blending: blending, batchSize: 3, dims: 3)
            let p = sw.probabilities(image, fill: [0], network: pointwise)
            XCTAssertEqual(p.channels, 2)
            for i in expected.indices { XCTAssertEqual(p.data[i], expected[i], accuracy: 1e-5, "\(blending) \(i)") }
        }
        // 2D: slices one by one.
        let sw2 = SlidingWindow(window: [1, 8, 8], overlap: 0.25, blending: .gaussian, batchSize: 4, dims: 2)
        let p2 = sw2.probabilities(image, fill: [0], network: { t in
            XCTAssertEqual(t.rank, 4)
            return self.pointwise(t)
        })
        for i in expected.indices { XCTAssertEqual(p2.data[i], expected[i], accuracy: 1e-5) }
    }

    func testWindowShrinksToAnImageSmallerThanIt() {
        let image = VoxelArray(data: [Float](repeating: 0.5, count: 24 * 40), channels: 1, shape: [1, 24, 40], spacing: [1, 1, 1])
        let sw = SlidingWindow(window: [1, 32, 32], overlap: 0.5, blending: .gaussian, batchSize: 8, dims: 2)
        var shapes: [[Int]] = []
        _ = sw.probabilities(image, fill: [0]) { t in
            shapes.append(t.shape)
            return self.pointwise(t)
        }
        // H: 24 < 32, one window of 24; W: 40 → origins 0 and 8 (step 16, last flush).
        XCTAssertEqual(shapes, [[2, 1, 24, 32]])
    }

    func testGaussianWeightsPeakAtTheCentre() {
        let sw = SlidingWindow(window: [1, 8, 8], overlap: 0.5, blending: .gaussian, batchSize: 1, dims: 2)
        let w = sw.weights()
        XCTAssertEqual(w.count, 64)
        XCTAssertGreaterThan(w[3 * 8 + 3], w[0])
        XCTAssertEqual(w[3 * 8 + 3], w[4 * 8 + 4], accuracy: 1e-6)
        XCTAssertGreaterThan(w[0], 0)
    }

    func testArgmaxPicksTheMostProbableClass() {
        let p = VoxelArray(data: [0.2, 0.5, 0.7, 0.3, 0.1, 0.6, 0.5, 0.1, 0.2, 0.3, 0.1, 0.3], channels: 3, shape: [1, 1, 4], spacing: [1, 1, 1])
        XCTAssertEqual(SlidingWindow.argmax(p).data, [0, 1, 0, 0])
    }
}
