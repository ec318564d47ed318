import Foundation
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

    /// Windows that disagree: a fake network whose output depends only on where its window lies
    /// (it reads the window's origin from the image, whose voxels hold `100·y + x`). Every voxel
    /// must be the weighted mean of the probabilities of the windows covering it, with the blend
    /// weights of its offset in each window, written out here from the formulas (not from
    /// `weights()`): Gaussian σ = n/8 about (n − 1)/2, tent 1 − |2t − 1| at t = (i + ½)/n, both
    /// floored at 1e-3; constant 1.
    func testBlendOfDisagreeingWindowsIsTheirWeightedMeanAtEveryOverlap() {
        let (h, w) = (6, 20)
        let image = VoxelArray(data: (0..<(h * w)).map { Float(100 * ($0 / w) + $0 % w) }, channels: 1, shape: [1, h, w], spacing: [1, 1, 1])
        /// The probability of class 0 a window at origin (oy, ox) predicts everywhere in it.
        func windowProbability(_ oy: Int, _ ox: Int) -> Double { 1 / (1 + Foundation.exp(-Double(ox - 3 * oy) / 4)) }
        let network: (Tensor) -> Tensor = { batch in
            let n = batch.shape[0], size = batch.count / n
            return Tensor(shape: [n, 2] + Array(batch.shape.dropFirst(2))) { p in
                for item in 0..<n {
                    let first = Int(batch[flat: item * size])   // the window's origin voxel
                    let logit = Float(first % 100 - 3 * (first / 100)) / 4
                    for v in 0..<size { p[(item * 2) * size + v] = logit; p[(item * 2 + 1) * size + v] = 0 }
                }
            }
        }
        func weight(_ i: Int, _ n: Int, _ blending: BlendingKind) -> Double {
            switch blending {
            case .constant: return 1
            case .linear: return max(1e-3, 1 - abs(2 * (Double(i) + 0.5) / Double(n) - 1))
            case .gaussian:
                let sigma = Double(n) / 8, x = Double(i) - Double(n - 1) / 2
                return max(1e-3, Foundation.exp(-x * x / (2 * sigma * sigma)))
            }
        }
        // Window 4 × 8 with overlap 1/2: origins y ∈ {0, 2}, x ∈ {0, 4, 8, 12}; most voxels lie in 2 or 4 windows.
        for blending in BlendingKind.allCases {
            let sw = SlidingWindow(window: [1, 4, 8], overlap: 0.5, blending: blending, batchSize: 3, dims: 3)
            XCTAssertEqual(sw.origins(length: h, window: 4), [0, 2])
            XCTAssertEqual(sw.origins(length: w, window: 8), [0, 4, 8, 12])
            let p = sw.probabilities(image, fill: [0], network: network)
            var disagreeing = 0
            for y in 0..<h {
                for x in 0..<w {
                    var sum = 0.0, total = 0.0, seen = Set<Double>()
                    for oy in [0, 2] where (oy..<oy + 4).contains(y) {
                        for ox in [0, 4, 8, 12] where (ox..<ox + 8).contains(x) {
                            let wt = weight(y - oy, 4, blending) * weight(x - ox, 8, blending)
                            sum += wt * windowProbability(oy, ox)
                            total += wt
                            seen.insert(windowProbability(oy, ox))
                        }
                    }
                    if seen.count > 1 { disagreeing += 1 }
                    XCTAssertEqual(Double(p.data[y * w + x]), sum / total, accuracy: 1e-5, "\(blending) at y \(y), x \(x)")
                    XCTAssertEqual(Double(p.data[h * w + y * w + x]), 1 - sum / total, accuracy: 1e-5)
                }
            }
            XCTAssertGreaterThan(disagreeing, h * w / 2, "most voxels lie where windows disagree")
        }
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
