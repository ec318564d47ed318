import MorphoLosses
import MorphoTensor
import MorphoTestSupport
import XCTest

final class SmoothnessTests: XCTestCase {
    var rng = RandomGenerator(seed: 25)

    /// Seed 002's Grad from slices (an independent, composed implementation).
    func composedGrad(_ flow: Tensor, l1: Bool) -> Tensor {
        let nd = flow.spatialRank
        var total: Tensor?
        for a in 0..<nd {
            let ax = a + 2, n = flow.shape[ax]
            let d = flow.slice(axis: ax, 1 ..< n) - flow.slice(axis: ax, 0 ..< n - 1)
            let term = (l1 ? d.abs() : d.squared()).mean() * (1 / Float(nd))
            total = total.map { $0 + term } ?? term
        }
        return total!
    }

    func testGradMatchesTheComposedSeedFormula() {
        // W of 19 and 33: full 16-lane blocks plus tails in the fused row kernel.
        for shape in [[2, 2, 7, 19], [1, 3, 5, 6, 33]] {
            let flow = Tensor.randomNormal(shape, using: &rng)
            for l1 in [true, false] {
                let ours = GradientSmoothnessLoss(penalty: l1 ? .l1 : .l2)(flow).item
                let ref = composedGrad(flow, l1: l1).item
                XCTAssertEqual(ours, ref, accuracy: 1e-5 * max(1, abs(ref)), "\(shape) l1 \(l1)")
            }
        }
    }

    func testGradGradientsMatchTheComposedVersion() {
        for shape in [[2, 2, 6, 21], [1, 3, 4, 5, 18]] {
            let flow = Tensor.randomNormal(shape, using: &rng)
            for l1 in [true, false] {
                let a = flow.requiringGrad(), b = flow.requiringGrad()
                GradientSmoothnessLoss(penalty: l1 ? .l1 : .l2)(a).backward()
                composedGrad(b, l1: l1).backward()
                let ga = a.grad!.scalars, gb = b.grad!.scalars
                let scale = gb.map(abs).reduce(0, nanStrictMax)
                for (x, y) in zip(ga, gb) { XCTAssertEqual(x, y, accuracy: 1e-5 * scale) }
            }
        }
    }

    func testGradFiniteDifferences() {
        let flow = Tensor.randomNormal([1, 2, 5, 6], using: &rng)
        assertGradient([flow]) { GradientSmoothnessLoss(penalty: .l2)($0[0]) }
        // l1: central differences need every forward difference away from 0 by more than h.
        var noise = RandomGenerator(seed: 5)
        let ramp = Tensor(shape: [1, 3, 4, 5, 6]) { p in
            for c in 0..<3 { for z in 0..<4 { for y in 0..<5 { for x in 0..<6 {
                p[((c * 4 + z) * 5 + y) * 6 + x] = 0.3 * Float(x) - 0.2 * Float(y) + 0.15 * Float(z) + 0.1 * Float(c) + 0.03 * noise.uniform()
            } } } }
        }
        assertGradient([ramp], h: 1e-3) { GradientSmoothnessLoss(penalty: .l1)($0[0]) }
    }

    func testGradOfAConstantFieldIsZero() {
        let flow = Tensor(shape: [1, 3, 4, 5, 6], repeating: 1.5)
        XCTAssertEqual(GradientSmoothnessLoss(penalty: .l2)(flow).item, 0)
        XCTAssertEqual(GradientSmoothnessLoss(penalty: .l1)(flow).item, 0)
    }

    func testGradIgnoresAnAxisOfExtentOne() {
        // [N, C, D=1, H, W]: the D axis has no difference and contributes 0; H and W keep weight 1/3.
        let flow = Tensor.randomNormal([1, 3, 1, 5, 6], using: &rng)
        let planar = flow.reshaped([1, 3, 5, 6])
        let ours = GradientSmoothnessLoss()(flow).item
        XCTAssertEqual(ours, GradientSmoothnessLoss()(planar).item * 2 / 3, accuracy: 1e-5)
    }

    func testBendingEnergy2DIsTheSeedFormula() {
        let u = Tensor.randomNormal([2, 2, 6, 7], using: &rng)
        func d(_ t: Tensor, _ ax: Int) -> Tensor { t.slice(axis: ax, 1 ..< t.shape[ax]) - t.slice(axis: ax, 0 ..< t.shape[ax] - 1) }
        let ty = d(u, 2), tx = d(u, 3)
        let expected = d(ty, 2).squared().mean() + d(tx, 3).squared().mean() + 2 * d(tx, 2).squared().mean()
        XCTAssertEqual(BendingEnergyLoss()(u).item, expected.item, accuracy: 1e-5)
    }

    func testBendingEnergyGradient3D() {
        assertGradient([Tensor.randomNormal([1, 3, 4, 5, 6], using: &rng)]) { BendingEnergyLoss()($0[0]) }
    }

    func testBendingEnergyOfAnAffineFieldIsZero() {
        let u = Tensor(shape: [1, 3, 4, 5, 6]) { p in
            for c in 0..<3 { for z in 0..<4 { for y in 0..<5 { for x in 0..<6 {
                p[(((c * 4) + z) * 5 + y) * 6 + x] = 0.5 * Float(z) - 0.25 * Float(y) + Float(c) * 0.1 * Float(x) + 2
            } } } }
        }
        XCTAssertEqual(BendingEnergyLoss()(u).item, 0, accuracy: 1e-9)
    }

    func testAffineIdentityLoss() {
        let identity3 = Tensor(shape: [2, 3, 4], data: (0..<2).flatMap { _ in [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0] })
        XCTAssertEqual(AffineIdentityLoss(penalty: .l1)(identity3).item, 0)
        XCTAssertEqual(AffineIdentityLoss(penalty: .l2)(identity3).item, 0)
        // Away from the l1 kink at the identity.
        let theta = Tensor(shape: [3, 2, 3], data: (0..<18).map { i in (i % 6 == 0 || i % 6 == 4 ? 1 : 0) + (i % 2 == 0 ? 1 : -1) * (0.1 + 0.4 * rng.uniform()) })
        assertGradient([theta]) { AffineIdentityLoss(penalty: .l2)($0[0]) }
        assertGradient([theta]) { AffineIdentityLoss(penalty: .l1)($0[0]) }
        let shifted = identity3 + 0.5
        XCTAssertEqual(AffineIdentityLoss(penalty: .l1)(shifted).item, 0.5, accuracy: 1e-7)
        XCTAssertEqual(AffineIdentityLoss(penalty: .l2)(shifted).item, 0.25, accuracy: 1e-7)
    }
}
