import Foundation
import MorphoLosses
import MorphoTensor
import XCTest

final class PROPELTests: XCTestCase {
    var rng = RandomGenerator(seed: 27)

    /// Seed 003 in Double: T1, T2 and L = −log10 T1 + log10 T2, averaged over the batch.
    func naivePROPEL(_ out: Tensor, _ target: Tensor, sigma: Double) -> Double {
        let b = out.shape[0], g = out.shape[1], d = out.shape[2] / 2
        func value(_ i: Int, _ j: Int, _ k: Int) -> Double { Double(out[flat: (i * g + j) * 2 * d + k]) }
        func gFun(_ m1: [Double], _ s1: [Double], _ m2: [Double], _ s2: [Double]) -> Double {
            var prod = 1.0, e = 0.0
            for k in 0..<d {
                prod *= s1[k] + s2[k]
                e += (2 * m1[k] * m2[k] - m1[k] * m1[k] - m2[k] * m2[k]) / (2 * (s1[k] + s2[k]))
            }
            return Foundation.exp(e) / (Foundation.pow((2 * Double.pi).squareRoot(), Double(d)) * prod.squareRoot())
        }
        func hFun(_ s: [Double]) -> Double { 1 / (Foundation.pow(2 * Double.pi.squareRoot(), Double(s.count)) * s.reduce(1, *).squareRoot()) }
        var total = 0.0
        for i in 0..<b {
            let mt = (0..<d).map { Double(target[flat: i * d + $0]) }
            let st = [Double](repeating: sigma * sigma, count: d)
            let mu = (0..<g).map { j in (0..<d).map { value(i, j, $0) } }
            let va = (0..<g).map { j in (0..<d).map { Foundation.pow(value(i, j, d + $0), 2) } }
            var t1 = 0.0, t2 = hFun([sigma * sigma])   // the seed's H(P_gt) on the [1,1,1] σ²
            for j in 0..<g { t1 += 2 / Double(g) * gFun(mt, st, mu[j], va[j]); t2 += hFun(va[j]) / Double(g * g) }
            for j in 0..<g { for l in (j + 1)..<max(j + 1, g) { t2 += 2 / Double(g * g) * gFun(mu[j], va[j], mu[l], va[l]) } }
            total += -Foundation.log10(t1) + Foundation.log10(t2)
        }
        return total / Double(b)
    }

    func randomOutput(_ b: Int, _ g: Int, _ d: Int) -> Tensor {
        Tensor(shape: [b, g, 2 * d]) { p in
            for i in 0..<(b * g) { for k in 0..<(2 * d) { p[i * 2 * d + k] = k < d ? rng.normal() * 0.3 : 0.2 + 0.3 * rng.uniform() } }
        }
    }

    func testPROPELMatchesTheSeed() {
        for (b, g, d) in [(3, 3, 2), (2, 1, 3), (4, 2, 1)] {
            let out = randomOutput(b, g, d), target = Tensor.randomNormal([b, d], std: 0.3, using: &rng)
            assertClose(PROPELLoss(sigma: 0.2)(output: out, target: target).item, naivePROPEL(out, target, sigma: 0.2), 1e-5, "b\(b) g\(g) d\(d)")
        }
    }

    func testPROPELGradient() {
        let target = Tensor.randomNormal([2, 2], std: 0.3, using: &rng)
        assertGradient([randomOutput(2, 3, 2)], h: 1e-3) { PROPELLoss(sigma: 0.3)(output: $0[0], target: target) }
    }
}
