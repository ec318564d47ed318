import XCTest
@testable import MorphoTrain

final class SegmentationMetricsTests: XCTestCase {
    func testDiceOfHandCountedMasks() {
        // Prediction 4 voxels, reference 6, overlap 3: 2·3 / (4 + 6) = 0.6.
        let p: [Float] = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
        let r: [Float] = [0, 1, 1, 1, 1, 1, 1, 0, 0, 0]
        let m = SegmentationMetrics.evaluate(prediction: p, reference: r, shape: [1, 1, 10], spacing: [1, 1, 1], labels: [0, 1])
        XCTAssertEqual(m[1].dice, 0.6, accuracy: 1e-12)
        XCTAssertEqual(m[1].predictedVoxels, 4)
        XCTAssertEqual(m[1].referenceVoxels, 6)
        // Background: 6 vs 4 voxels, overlap 3 → 0.6 as well.
        XCTAssertEqual(m[0].dice, 0.6, accuracy: 1e-12)
    }

    func testSurfaceDistancesOnALineByHand() {
        // Line of 8 voxels, 2 mm apart. P = {0}; R = {0, 4}. Surfaces are the masks themselves.
        // d(P→R) = [0]; d(R→P) = [0, 8 mm]. HD95 = max(q95[0], q95[0, 8]) = 0.95·8 = 7.6;
        // MSD = (0 + 0 + 8) / 3.
        var p = [Bool](repeating: false, count: 8), r = p
        p[0] = true
        r[0] = true
        r[4] = true
        let m = SegmentationMetrics.compare(p, r, shape: [1, 1, 8], spacing: [1, 1, 2])
        XCTAssertEqual(m.hd95, 7.6, accuracy: 1e-6)
        XCTAssertEqual(m.meanSurfaceDistance, 8.0 / 3.0, accuracy: 1e-6)
        XCTAssertEqual(m.dice, 2.0 / 3.0, accuracy: 1e-12)
    }

    func testShiftedSquaresHaveTheShiftAsSurfaceDistance() {
        // Two 4×4 squares in a 12×12 plane, the second shifted by 3 voxels along x (spacing 0.5 mm).
        // Surface of each: its 12 border voxels. Distances from P's surface to R's: columns x=2 and
        // x=3 (inner of P) … computed by hand: P = x 2…5, R = x 5…8, rows 4…7.
        //   P surface: x=2 (4), x=5 (4), x=3,4 at rows 4,7 (4) = 12 voxels.
        //   Nearest R-surface voxel (R surface: x=5 col, x=8 col, x=6,7 on rows 4 and 7):
        //   x=2 → 3 voxels; x=3 → 2; x=4 → 1; x=5 → 0 (shared column).
        //   d(P→R) = [3,3,3,3, 0,0,0,0, 2,2, 1,1] · 0.5 mm; by symmetry d(R→P) is the same multiset.
        var p = [Bool](repeating: false, count: 144), r = p
        for y in 4...7 {
            for x in 2...5 { p[y * 12 + x] = true }
            for x in 5...8 { r[y * 12 + x] = true }
        }
        let m = SegmentationMetrics.compare(p, r, shape: [1, 12, 12], spacing: [1, 1, 0.5])
        let d = [3.0, 3, 3, 3, 0, 0, 0, 0, 2, 2, 1, 1].map { $0 * 0.5 }
        XCTAssertEqual(m.meanSurfaceDistance, d.reduce(0, +) / 12, accuracy: 1e-6)
        XCTAssertEqual(m.hd95, SegmentationMetrics.percentile(d, 95), accuracy: 1e-6)
        XCTAssertEqual(m.hd95, 1.5, accuracy: 1e-6)
        XCTAssertEqual(m.dice, 2.0 * 4 / 32, accuracy: 1e-12)
    }

    func testEmptyMasksGiveDiceOneOrInfiniteDistances() {
        let empty = [Bool](repeating: false, count: 27)
        var one = empty
        one[13] = true
        let both = SegmentationMetrics.compare(empty, empty, shape: [3, 3, 3], spacing: [1, 1, 1])
        XCTAssertEqual(both.dice, 1)
        XCTAssertEqual(both.hd95, 0)
        let missing = SegmentationMetrics.compare(empty, one, shape: [3, 3, 3], spacing: [1, 1, 1])
        XCTAssertEqual(missing.dice, 0)
        XCTAssertEqual(missing.hd95, .infinity)
        XCTAssertEqual(missing.meanSurfaceDistance, .infinity)
    }

    func testSurfaceOfASolidCubeIsItsShell() {
        var mask = [Bool](repeating: false, count: 125)
        for z in 1...3 { for y in 1...3 { for x in 1...3 { mask[(z * 5 + y) * 5 + x] = true } } }
        let s = SegmentationMetrics.surface(mask, shape: [5, 5, 5])
        XCTAssertEqual(s.filter { $0 }.count, 26)
        XCTAssertFalse(s[(2 * 5 + 2) * 5 + 2])
        // In a single plane only in-plane neighbours count: a 3×3 square has 8 surface voxels.
        let plane = SegmentationMetrics.surface(Array(mask[25..<50]) + Array(mask[50..<75]), shape: [2, 5, 5])
        XCTAssertEqual(plane.filter { $0 }.count, 18)  // two slabs, both touch the z border
        let single = SegmentationMetrics.surface(Array(mask[50..<75]), shape: [1, 5, 5])
        XCTAssertEqual(single.filter { $0 }.count, 8)
    }

    func testPercentileMatchesNumpyLinearInterpolation() {
        // numpy.percentile([1, 2, 3, 4, 10], 95) = 8.8
        XCTAssertEqual(SegmentationMetrics.percentile([4, 1, 10, 3, 2], 95), 8.8, accuracy: 1e-12)
        XCTAssertEqual(SegmentationMetrics.percentile([5], 95), 5)
    }
}
