import Foundation
import MorphoLosses
import MorphoTensor
import XCTest

final class NormalizedCrossCorrelationTests: XCTestCase {
    var rng = RandomGenerator(seed: 24)

    /// Seed 002's LCC with explicit window loops (zero padding), in Double.
    func naiveLCC(_ i: Tensor, _ j: Tensor, window: Int, eps: Double = 1e-5) -> Double {
        let dims = Array(repeating: 1, count: 5 - i.rank) + i.spatialShape
        let (d, h, w) = (dims[0], dims[1], dims[2])
        let planes = i.shape[0] * i.shape[1], r = window / 2
        let n = Foundation.pow(Double(window), Double(i.spatialRank))
        let rd = i.spatialRank == 3 ? r : 0
        var total = 0.0
        for p in 0..<planes { for z in 0..<d { for y in 0..<h { for x in 0..<w {
            var si = 0.0, sj = 0.0, sii = 0.0, sjj = 0.0, sij = 0.0
            for dz in -rd...rd { for dy in -r...r { for dx in -r...r {
                let zz = z + dz, yy = y + dy, xx = x + dx
                guard zz >= 0, zz < d, yy >= 0, yy < h, xx >= 0, xx < w else { continue }
                let k = ((p * d + zz) * h + yy) * w + xx
                let a = Double(i[flat: k]), b = Double(j[flat: k])
                si += a; sj += b; sii += a * a; sjj += b * b; sij += a * b
            } } }
            let cross = sij - si * sj / n, vi = sii - si * si / n, vj = sjj - sj * sj / n
            total += cross * cross / (vi * vj + eps)
        } } } }
        return 1 - total / Double(planes * d * h * w)
    }

    func testLocalNCCMatchesNaiveWindowSums() {
        for (shape, window) in [([2, 1, 11, 13], 5), ([1, 2, 6, 7, 9], 3), ([1, 1, 5, 6, 7], 9)] {
            let i = Tensor.randomUniform(shape, using: &rng), j = Tensor.randomUniform(shape, using: &rng)
            assertClose(LocalNCC(window: window)(i, j).item, naiveLCC(i, j, window: window), 2e-5, "LCC \(shape) w\(window)")
        }
    }

    func testLocalNCCOfAnImageWithItselfIsNearZeroAwayFromFlatWindows() {
        let i = Tensor.randomUniform([1, 1, 12, 12], using: &rng)
        XCTAssertLessThan(LocalNCC(window: 5)(i, i).item, 1e-3)
    }

    func testLocalNCCGradients2DAnd3D() {
        let a = Tensor.randomUniform([1, 1, 9, 10], using: &rng), b = Tensor.randomUniform([1, 1, 9, 10], using: &rng)
        assertGradient([a, b], h: 1e-2) { LocalNCC(window: 5)($0[0], $0[1]) }
        let c = Tensor.randomUniform([1, 1, 5, 6, 7], using: &rng), d = Tensor.randomUniform([1, 1, 5, 6, 7], using: &rng)
        assertGradient([c, d], h: 1e-2) { LocalNCC(window: 3)($0[0], $0[1]) }
    }

    func testLocalNCCGradientOfTheMovingImageOnly() {
        let fixed = Tensor.randomUniform([2, 1, 8, 8], using: &rng)
        assertGradient([Tensor.randomUniform([2, 1, 8, 8], using: &rng)]) { LocalNCC(window: 7)(fixed, $0[0]) }
        // Fixed first or second: both paths of the fused backward.
        let moving = Tensor.randomUniform([2, 1, 8, 8], using: &rng)
        assertGradient([moving]) { LocalNCC(window: 7)($0[0], fixed) }
    }

    func testLocalNCCOnConstantImagesIsFinite() {
        // Inside, every window of a constant image is flat: cross = var = 0 and cc = 0/eps = 0.
        // Near the border the zero padding makes windows non-flat, as in the seed.
        let constant = Tensor(shape: [1, 1, 6, 6, 6], repeating: 0.5)
        let other = Tensor.randomUniform([1, 1, 6, 6, 6], using: &rng).requiringGrad()
        let loss = LocalNCC(window: 3)(constant, other)
        assertClose(loss.item, naiveLCC(constant, other.detached(), window: 3), 2e-5, "constant vs random")
        loss.backward()
        XCTAssertTrue(other.grad!.isFinite)
        let both = LocalNCC(window: 3)(constant.requiringGrad(), constant)
        assertClose(both.item, naiveLCC(constant, constant, window: 3), 2e-5, "constant vs itself")
        let flatInside = LocalNCC(window: 3)(Tensor.zeros([1, 1, 5, 5]), Tensor.zeros([1, 1, 5, 5]).requiringGrad())
        XCTAssertEqual(flatInside.item, 1, "all-zero images: cc = 0 everywhere, no NaN")
        flatInside.backward()
    }

    func testGlobalNCCMatchesTheSeedFormula() {
        let i = Tensor.randomUniform([2, 1, 6, 7], using: &rng), j = Tensor.randomUniform([2, 1, 6, 7], using: &rng)
        let a = i.scalars.map(Double.init), b = j.scalars.map(Double.init)
        let m = Double(a.count)
        let ma = a.reduce(0, +) / m, mb = b.reduce(0, +) / m
        let cov = zip(a, b).map { ($0 - ma) * ($1 - mb) }.reduce(0, +) / m
        let sa = (a.map { ($0 - ma) * ($0 - ma) }.reduce(0, +) / m).squareRoot()
        let sb = (b.map { ($0 - mb) * ($0 - mb) }.reduce(0, +) / m).squareRoot()
        assertClose(GlobalNCC()(i, j).item, 1 - cov / (sa * sb), 1e-6)
        XCTAssertEqual(GlobalNCC()(i, i * 3 + 1).item, 0, accuracy: 1e-6, "an affine intensity change is perfectly correlated")
    }

    func testGlobalNCCGradient() {
        let i = Tensor.randomUniform([1, 1, 5, 4, 3], using: &rng), j = Tensor.randomUniform([1, 1, 5, 4, 3], using: &rng)
        assertGradient([i, j]) { GlobalNCC()($0[0], $0[1]) }
    }

    func testGlobalNCCOfAConstantImageIsOneWithAFiniteGradient() {
        let constant = Tensor(shape: [1, 1, 4, 4], repeating: 2).requiringGrad()
        let other = Tensor.randomUniform([1, 1, 4, 4], using: &rng).requiringGrad()
        let loss = GlobalNCC()(constant, other)
        XCTAssertEqual(loss.item, 1, accuracy: 1e-6)
        loss.backward()
        XCTAssertTrue(constant.grad!.isFinite && other.grad!.isFinite)
    }

    func testMeanSquaredErrorValueAndGradient() {
        let i = Tensor.randomNormal([2, 1, 3, 4], using: &rng), j = Tensor.randomNormal([2, 1, 3, 4], using: &rng)
        let expected = zip(i.scalars, j.scalars).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / 24
        assertClose(MeanSquaredError()(i, j).item, expected, 1e-6)
        assertGradient([i, j]) { MeanSquaredError()($0[0], $0[1]) }
    }
}
