import MorphoKernels
import XCTest
import MorphoConformance
import MorphoTestSupport

final class DistanceTransformTests: XCTestCase {
    /// Brute force: for every voxel, min over feature voxels of the squared physical distance.
    private func naiveSquaredDistance(to features: [Bool], shape: [Int], spacing: [Double]) -> [Double] {
        let dims = Array(repeating: 1, count: 3 - shape.count) + shape
        let sp = Array(repeating: 1.0, count: 3 - shape.count) + spacing
        func coords(_ i: Int) -> [Double] {
            [Double(i / (dims[1] * dims[2])) * sp[0], Double((i / dims[2]) % dims[1]) * sp[1], Double(i % dims[2]) * sp[2]]
        }
        let featureCoords = features.indices.filter { features[$0] }.map(coords)
        return features.indices.map { i in
            let c = coords(i)
            var best = Double.infinity
            for f in featureCoords {
                let dz = c[0] - f[0], dy = c[1] - f[1], dx = c[2] - f[2]
                best = min(best, dz * dz + dy * dy + dx * dx)
            }
            return best
        }
    }

    private func randomMask(_ count: Int, density: Double, seed: UInt64) -> [Bool] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Double.random(in: 0..<1, using: &rng) < density }
    }

    func testSignedDistanceMatchesScipyFixtures() throws {
        let cases = try Fixture.all("signed_distance_")
        XCTAssertEqual(cases.count, 6)
        for c in cases {
            let mask = c.inputs["mask"]!
            let spacing = (c.params["spacing"] as! [NSNumber]).map { $0.doubleValue }
            let ours = signedDistance(mask: mask.bools, shape: mask.shape, spacing: spacing)
            c.assertClose(ours, c.output, "signed distance")
        }
    }

    func testSquaredEDTMatchesBruteForceIn1D2D3DWithAnisotropicSpacing() {
        let cases: [([Int], [Double])] = [
            ([37], [0.7]), ([13, 17], [1, 1]), ([19, 11], [2.0, 0.6]),
            ([7, 9, 11], [1, 1, 1]), ([9, 12, 10], [1.5, 1.0, 0.8]), ([1, 23, 5], [3, 0.9, 1.7]),
        ]
        for (k, (shape, spacing)) in cases.enumerated() {
            for density in [0.05, 0.5, 0.93] {
                let mask = randomMask(shape.reduce(1, *), density: density, seed: UInt64(k * 10) + UInt64(density * 100))
                let ours = squaredEDT(mask: mask, shape: shape, spacing: spacing)
                // scipy semantics: distance from true voxels to the nearest false voxel.
                let ref = naiveSquaredDistance(to: mask.map { !$0 }, shape: shape, spacing: spacing)
                for i in mask.indices {
                    if ref[i].isInfinite { XCTAssertEqual(ours[i], .infinity); continue }
                    XCTAssertEqual(Double(ours[i]), ref[i], accuracy: 1e-5 * max(1, ref[i]), "shape \(shape) voxel \(i)")
                }
            }
        }
    }

    func testDistanceToMaskMatchesBruteForceOnLargeSparseVolumeWithTwoThreads() {
        let shape = [33, 40, 37], spacing = [1.2, 0.9, 1.0]
        let mask = randomMask(shape.reduce(1, *), density: 0.001, seed: 7)
        let ours = withThreads(2) { distanceToMask(mask, shape: shape, spacing: spacing) }
        let ref = naiveSquaredDistance(to: mask, shape: shape, spacing: spacing).map { $0.squareRoot() }
        var worst = 0.0
        for i in mask.indices { worst = nanStrictMax(worst, abs(Double(ours[i]) - ref[i])) }
        XCTAssertLessThan(worst, 1e-4)
        XCTAssertEqual(withThreads(1) { distanceToMask(mask, shape: shape, spacing: spacing) }, ours)
    }

    func testSignedDistanceOfABallMatchesBruteForceWhereWholeTilesAreSkipped() {
        // Most 16-line tiles of a 24³ volume with a small ball are all background (all 0 for the
        // inside transform) or hold no feature (all +∞ for the outside one): the skip path.
        let n = 24, shape = [n, n, n], spacing = [1.0, 1.25, 0.75]
        var mask = [Bool](repeating: false, count: n * n * n)
        for z in 0..<n { for y in 0..<n { for x in 0..<n {
            let dz = Double(z - 10), dy = Double(y - 13), dx = Double(x - 11)
            mask[(z * n + y) * n + x] = dz * dz + dy * dy + dx * dx < 25
        } } }
        let ours = withThreads(2) { signedDistance(mask: mask, shape: shape, spacing: spacing) }
        let toMask = naiveSquaredDistance(to: mask, shape: shape, spacing: spacing)
        let toBackground = naiveSquaredDistance(to: mask.map { !$0 }, shape: shape, spacing: spacing)
        var worst = 0.0
        for i in mask.indices {
            let ref = mask[i] ? 1 - toBackground[i].squareRoot() : toMask[i].squareRoot()
            worst = nanStrictMax(worst, abs(Double(ours[i]) - ref))
        }
        XCTAssertLessThan(worst, 1e-4)
    }

    func testSignedDistanceIsZeroOnEmptyMask() {
        XCTAssertEqual(signedDistance(mask: [Bool](repeating: false, count: 60), shape: [3, 4, 5]), [Float](repeating: 0, count: 60))
    }

    func testSignedDistanceIsZeroOnFullMask() {
        XCTAssertEqual(signedDistance(mask: [Bool](repeating: true, count: 60), shape: [3, 4, 5], spacing: [2, 1, 1]),
                       [Float](repeating: 0, count: 60))
    }

    func testSignedDistanceIsPositiveOutsideAndOneMinusDepthInside() {
        // A 1-D mask of five voxels in the middle of eleven, 2 mm spacing.
        let mask = (0..<11).map { (3...7).contains($0) }
        let phi = signedDistance(mask: mask, shape: [11], spacing: [2])
        XCTAssertEqual(phi, [6, 4, 2, -1, -3, -5, -3, -1, 2, 4, 6])
    }

    func testDistanceToEmptyMaskIsInfinite() {
        let d = distanceToMask([Bool](repeating: false, count: 24), shape: [2, 3, 4])
        XCTAssertTrue(d.allSatisfy { $0 == .infinity })
    }

    func testSquaredEDTIsZeroOnBackground() {
        let mask = randomMask(400, density: 0.5, seed: 3)
        let d = squaredEDT(mask: mask, shape: [20, 20])
        for i in mask.indices where !mask[i] { XCTAssertEqual(d[i], 0) }
        for i in mask.indices where mask[i] { XCTAssertGreaterThanOrEqual(d[i], 1) }
    }

}
