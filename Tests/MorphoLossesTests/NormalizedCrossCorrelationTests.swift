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

    /// The seed's window 9 on volumes larger than it, so most windows lie wholly inside the image
    /// (the other window-9 case, 5 × 6 × 7, is all padding), and longer than one 8192-voxel
    /// reduction block (2 × 20·21·22 = 18 480 voxels): the value against the brute-force Double
    /// LCC, and the gradient at voxels whose windows touch no padding against central
    /// differences of that same brute-force LCC.
    func testLocalNCCWindow9AwayFromThePaddingAndOverSeveralReductionBlocks() {
        let shape = [2, 1, 20, 21, 22]
        let i = Tensor.randomUniform(shape, using: &rng)
        let j = i * 0.6 + Tensor.randomUniform(shape, using: &rng) * 0.4   // correlated: cc far from 0 inside
        let moving = j.requiringGrad()
        let loss = LocalNCC(window: 9)(i, moving)
        assertClose(loss.item, naiveLCC(i, j, window: 9), 2e-5, "LCC w9 on 2 × 20 × 21 × 22")
        loss.backward()
        let gradient = moving.grad!
        // (item, z, y, x), each at least 4 voxels from every face.
        for (item, z, y, x) in [(0, 10, 10, 11), (1, 6, 14, 9), (0, 13, 5, 15), (1, 15, 16, 17)] {
            let k = ((item * 20 + z) * 21 + y) * 22 + x
            var plus = j.scalars, minus = j.scalars
            plus[k] += 1e-2
            minus[k] -= 1e-2
            let step = Double(plus[k]) - Double(minus[k])
            let difference = (naiveLCC(i, Tensor(shape: shape, data: plus), window: 9)
                - naiveLCC(i, Tensor(shape: shape, data: minus), window: 9)) / step
            XCTAssertEqual(Double(gradient[flat: k]), difference, accuracy: 2e-3 * abs(difference) + 1e-9,
                           "gradient at item \(item), (z, y, x) = (\(z), \(y), \(x))")
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

    func testLocalNCCOnConstantImagesMatchesTheSeedAndFiniteDifferences() {
        // Inside, every window of a constant image is flat: cross = var = 0 and cc = 0/eps = 0.
        // Near the border the zero padding makes windows non-flat, as in the seed.
        let constant = Tensor(shape: [1, 1, 6, 6, 6], repeating: 0.5)
        let other = Tensor.randomUniform([1, 1, 6, 6, 6], using: &rng).requiringGrad()
        let loss = LocalNCC(window: 3)(constant, other)
        assertClose(loss.item, naiveLCC(constant, other.detached(), window: 3), 2e-5, "constant vs random")
        loss.backward()
        XCTAssertTrue(other.grad!.isFinite)
        assertGradient([other.detached()], h: 1e-2) { LocalNCC(window: 3)(constant, $0[0]) }
        let both = LocalNCC(window: 3)(constant.requiringGrad(), constant)
        assertClose(both.item, naiveLCC(constant, constant, window: 3), 2e-5, "constant vs itself")
        let zeros = Tensor.zeros([1, 1, 5, 5]).requiringGrad()
        let flatInside = LocalNCC(window: 3)(Tensor.zeros([1, 1, 5, 5]), zeros)
        XCTAssertEqual(flatInside.item, 1, "all-zero images: cc = 0 everywhere, no NaN")
        flatInside.backward()
        // cc = cross² / (var·var + eps) with cross = 0 in every window: ∂cc = 2·cross·∂cross/(…) = 0.
        XCTAssertEqual(zeros.grad!.scalars, [Float](repeating: 0, count: 25))
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

    func testGlobalNCCOfAConstantImageIsOneWithTheGradientOfItsFormula() {
        let constant = Tensor(shape: [1, 1, 4, 4], repeating: 2).requiringGrad()
        let other = Tensor.randomUniform([1, 1, 4, 4], using: &rng).requiringGrad()
        let loss = GlobalNCC()(constant, other)
        XCTAssertEqual(loss.item, 1, accuracy: 1e-6)
        loss.backward()
        // L = 1 − cov/(σ_I σ_J + ε) with σ_I = cov = 0: moving J changes nothing (∂cov/∂J_v =
        // (I_v − μ_I)/M = 0), while ∂L/∂I_v = −(J_v − μ_J)/(M·ε) (the σ_I term is multiplied by cov = 0).
        XCTAssertEqual(other.grad!.scalars, [Float](repeating: 0, count: 16))
        let j = other.scalars.map(Double.init), mean = j.reduce(0, +) / 16, eps = GlobalNCC().eps
        for (v, g) in constant.grad!.scalars.enumerated() {
            let expected = -(j[v] - mean) / (16 * eps)
            XCTAssertEqual(Double(g), expected, accuracy: 1e-5 * abs(expected), "voxel \(v)")
        }
    }

    func testMeanSquaredErrorValueAndGradient() {
        let i = Tensor.randomNormal([2, 1, 3, 4], using: &rng), j = Tensor.randomNormal([2, 1, 3, 4], using: &rng)
        let expected = zip(i.scalars, j.scalars).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / 24
        assertClose(MeanSquaredError()(i, j).item, expected, 1e-6)
        assertGradient([i, j]) { MeanSquaredError()($0[0], $0[1]) }
    }
}
