import XCTest
import MorphoTensor
import MorphoTestSupport
@testable import MorphoNN

/// MONAI's `ResidualUnit` (`model.unet.residual_units`): its backward against central
/// differences, for each kind of residual path.
final class ResidualUnitTests: XCTestCase {
    func check(inChannels: Int, outChannels: Int, stride: Int, subunits: Int, expectProjection: Bool) {
        var rng = RandomGenerator(seed: 11)
        let unit = ResidualUnit(
            spatialRank: 2, inChannels: inChannels, outChannels: outChannels, stride: stride, subunits: subunits,
            norm: .instance, activation: .prelu, rng: &rng)
        XCTAssertEqual(unit.residual != nil, expectProjection)
        let x = Tensor.randomNormal([1, inChannels, 8, 7], using: &rng)
        let r = GradientCheck.check([x], h: 2e-3, rtol: 3e-2) { unit($0[0]) }
        XCTAssertTrue(r.passed, "\(r)")
        // The weights' gradients (accumulated in the parameters by backward) against central
        // differences of L = Σ c ⊙ unit(x), c a fixed random cotangent, at a few entries each.
        let c = withoutGradients { Tensor.randomNormal(unit(x).shape, using: &rng) }
        func loss() -> Double {
            withoutGradients { let y = unit(x); return (0..<y.count).reduce(0.0) { $0 + Double(y[flat: $1]) * Double(c[flat: $1]) } }
        }
        unit.zeroGrad()
        (unit(x) * c).sum().backward()
        for (name, p) in unit.namedParameters where name.hasSuffix("weight") {
            let g = p.grad!
            var worst = 0.0, scale = 0.0
            for i in 0..<g.count { scale = nanStrictMax(scale, Double(abs(g[flat: i]))) }
            let h: Float = 2e-3
            for i in Swift.stride(from: 0, to: p.count, by: max(1, p.count / 12)) {
                p.update { $0[i] += h }
                let plus = loss()
                p.update { $0[i] -= 2 * h }
                let minus = loss()
                p.update { $0[i] += h }
                worst = nanStrictMax(worst, abs((plus - minus) / (2 * Double(h)) - Double(g[flat: i])))
            }
            XCTAssertLessThanOrEqual(worst, 1e-3 + 3e-2 * scale, "\(name): max |analytic − numeric| \(worst), max |grad| \(scale)")
        }
    }

    func testResidualUnitWithIdentitySkipMatchesFiniteDifferences() {
        check(inChannels: 3, outChannels: 3, stride: 1, subunits: 2, expectProjection: false)
    }

    func testResidualUnitWithOneByOneSkipMatchesFiniteDifferences() {
        check(inChannels: 2, outChannels: 4, stride: 1, subunits: 2, expectProjection: true)
    }

    func testStridedResidualUnitMatchesFiniteDifferences() {
        check(inChannels: 2, outChannels: 3, stride: 2, subunits: 1, expectProjection: true)
    }
}
