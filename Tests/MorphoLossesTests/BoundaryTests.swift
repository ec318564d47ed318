import MorphoKernels
import MorphoLosses
import MorphoTensor
import XCTest

final class BoundaryTests: XCTestCase {
    var rng = RandomGenerator(seed: 23)

    /// A disc of `radius` around the centre of an `h`×`w` image, as a label map [1, h, w].
    func disc(_ h: Int, _ w: Int, radius: Double) -> Tensor {
        Tensor(shape: [1, h, w]) { p in
            for y in 0..<h { for x in 0..<w {
                let dy = Double(y) - Double(h - 1) / 2, dx = Double(x) - Double(w - 1) / 2
                p[y * w + x] = (dy * dy + dx * dx).squareRoot() <= radius ? 1 : 0
            } }
        }
    }

    func testDistanceMapsAreTheKernelsSignedDistancePerClass() {
        let labels = randomLabels([2, 5, 6, 7], classes: 3, using: &rng)
        let maps = signedDistanceMaps(labels: labels, classes: 3, spatial: [5, 6, 7], spacing: [2, 1, 0.5])
        XCTAssertEqual(maps.shape, [2, 3, 5, 6, 7])
        for item in 0..<2 {
            for c in 0..<3 {
                let mask = (0..<210).map { labels[flat: item * 210 + $0] == Float(c) }
                let ref = signedDistance(mask: mask, shape: [5, 6, 7], spacing: [2, 1, 0.5])
                for v in 0..<210 { XCTAssertEqual(maps[flat: (item * 3 + c) * 210 + v], ref[v]) }
            }
        }
    }

    func testSignedDistanceIsZeroForAnAbsentClass() {
        let maps = signedDistanceMaps(labels: Tensor.zeros([1, 1, 8, 8]), classes: 2, spatial: [8, 8])
        XCTAssertEqual(maps.slice(axis: 1, 1 ..< 2).scalars, [Float](repeating: 0, count: 64))
        XCTAssertEqual(maps.slice(axis: 1, 0 ..< 1).scalars, [Float](repeating: 0, count: 64), "a full mask has no boundary either")
        // So the boundary loss of an empty ground truth is exactly 0 with a zero gradient.
        let probs = randomProbabilities([1, 2, 8, 8], using: &rng).requiringGrad()
        let loss = BoundaryLoss()(probs: probs, distanceMaps: maps)
        XCTAssertEqual(loss.item, 0)
        loss.backward()
        XCTAssertEqual(probs.grad!.maxValue, 0)
    }

    func testBoundaryLossIsMinimalAtTheGroundTruth() {
        let labels = disc(16, 16, radius: 5)
        let exact = Tensor.concat([1 - labels.reshaped([1, 1, 16, 16]), labels.reshaped([1, 1, 16, 16])], axis: 1)
        let loss = BoundaryLoss()
        let atTruth = loss(probs: exact, labels: labels).item
        XCTAssertLessThan(atTruth, 0, "the optimum is negative (inside distances)")
        // Any other (soft) segmentation scores higher.
        for _ in 0..<5 {
            let other = randomProbabilities([1, 2, 16, 16], using: &rng)
            XCTAssertGreaterThan(loss(probs: other, labels: labels).item, atTruth)
        }
    }

    func testBoundaryLossAveragesOverItemsClassesAndVoxels() {
        let probs = randomProbabilities([2, 3, 4, 5], using: &rng)
        let labels = randomLabels([2, 4, 5], classes: 3, using: &rng)
        let maps = signedDistanceMaps(labels: labels, classes: 3, spatial: [4, 5])
        var sum = 0.0
        for n in 0..<2 { for c in [1, 2] { for v in 0..<20 {
            sum += Double(probs[flat: (n * 3 + c) * 20 + v]) * Double(maps[flat: (n * 3 + c) * 20 + v])
        } } }
        assertClose(BoundaryLoss(idc: [1, 2])(probs: probs, distanceMaps: maps).item, sum / 80, 1e-6)
    }

    func testBoundaryLossGradient() {
        let labels = randomLabels([2, 3, 4, 5], classes: 2, using: &rng)
        let maps = signedDistanceMaps(labels: labels, classes: 2, spatial: [3, 4, 5], spacing: [1.5, 1, 1])
        assertGradient([randomProbabilities([2, 2, 3, 4, 5], using: &rng)]) { BoundaryLoss()(probs: $0[0], distanceMaps: maps) }
    }
}
