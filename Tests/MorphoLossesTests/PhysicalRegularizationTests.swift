import Foundation
import MorphoKernels
import MorphoLosses
import MorphoTensor
import MorphoTestSupport
import XCTest

final class PhysicalRegularizationTests: XCTestCase {
    var rng = RandomGenerator(seed: 28)

    func testIdenticalPredictionAndTargetGiveZero() {
        let image = Tensor.randomUniform([2, 1, 9, 8], using: &rng)
        XCTAssertEqual(PhysicalRegularizationLoss(K: 0.5)(prediction: image, target: image).item, 0)
    }

    func testConstantImagesGiveTheSeedsValueAndGradient() {
        // Zero padding makes a constant image's fluxes non-zero along the border: 2D against the
        // dense implementation of the seed (naivePRL2D) and finite differences.
        let flat = Tensor(shape: [1, 1, 7, 8], repeating: 0.3), other = Tensor(shape: [1, 1, 7, 8], repeating: 0.8)
        let loss = PhysicalRegularizationLoss(K: 0.5)
        assertClose(loss(prediction: other, target: flat).item, naivePRL2D(other, flat, K: 0.5), 1e-4, "constant 2D")
        assertGradient([other], h: 1e-2, rtol: 3e-2) { loss(prediction: $0[0], target: flat) }
        // 3D: the fused value and gradient equal the composed ones (autograd of plain filters).
        let constant = Tensor(shape: [1, 1, 5, 6, 7], repeating: 0.3)
        let a = Tensor(shape: [1, 1, 5, 6, 7], repeating: 0.8).requiringGrad(), b = a.detached().requiringGrad()
        let fused = loss(prediction: a, target: constant), composed = loss.composed(prediction: b, target: constant)
        XCTAssertGreaterThan(composed.item, 0, "the border fluxes differ")
        XCTAssertEqual(fused.item, composed.item, accuracy: 1e-5 * max(1, abs(composed.item)))
        fused.backward()
        composed.backward()
        var worst: Float = 0
        for (u, v) in zip(a.grad!.scalars, b.grad!.scalars) { worst = nanStrictMax(worst, abs(u - v)) }
        XCTAssertLessThan(worst, 1e-5 * max(1, b.grad!.scalars.map(abs).reduce(0, nanStrictMax)))
    }

    func testPRLGradient2D() {
        let target = randomLabels([1, 1, 7, 8], classes: 2, using: &rng)
        assertGradient([Tensor.randomUniform([1, 1, 7, 8], low: 0.2, high: 0.8, using: &rng)], h: 1e-2, rtol: 3e-2) {
            PhysicalRegularizationLoss(K: 0.5)(prediction: $0[0], target: target)
        }
    }

    func testPRLGradient3D() {
        let target = randomLabels([1, 1, 4, 5, 6], classes: 2, using: &rng)
        assertGradient([Tensor.randomUniform([1, 1, 4, 5, 6], low: 0.2, high: 0.8, using: &rng)], h: 1e-2, rtol: 3e-2) {
            PhysicalRegularizationLoss(K: 2)(prediction: $0[0], target: target)
        }
    }

    /// The fused operation (hand-written adjoint) against the autograd composition, value and
    /// gradient, 2D and 3D, batch 2, both exponent branches.
    func testFusedLossAndGradientEqualTheComposedOnes() {
        for (shape, K, p) in [([2, 1, 9, 11], Float(0.5), Float(2)), ([2, 1, 5, 6, 7], 2, 2), ([1, 1, 4, 7, 6], 0.5, 3)] {
            let target = randomLabels(shape, classes: 2, using: &rng)
            let pred = Tensor.randomUniform(shape, low: 0.1, high: 0.9, using: &rng)
            let loss = PhysicalRegularizationLoss(K: K, p: p)
            let a = pred.requiringGrad(), b = pred.requiringGrad()
            let fused = loss(prediction: a, target: target), composed = loss.composed(prediction: b, target: target)
            XCTAssertEqual(fused.item, composed.item, accuracy: 1e-5 * max(1, abs(composed.item)), "value \(shape) p \(p)")
            fused.backward()
            composed.backward()
            let (ga, gb) = (a.grad!.scalars, b.grad!.scalars)
            let scale = gb.map { abs($0) }.reduce(0, nanStrictMax)
            for i in ga.indices { XCTAssertEqual(ga[i], gb[i], accuracy: 1e-4 * scale, "gradient \(shape) p \(p) at \(i)") }
        }
    }

    /// A target given by its precomputed fluxes gives the same value and gradient as the target.
    func testLossFromTargetFluxesEqualsTheLossFromTheTarget() {
        for shape in [[2, 1, 9, 11], [1, 1, 5, 6, 7]] {
            let target = randomLabels(shape, classes: 2, using: &rng)
            let pred = Tensor.randomUniform(shape, low: 0.1, high: 0.9, using: &rng)
            let loss = PhysicalRegularizationLoss(K: 0.5)
            let a = pred.requiringGrad(), b = pred.requiringGrad()
            let direct = loss(prediction: a, target: target), cached = loss(prediction: b, targetFluxes: loss.targetFluxes(target))
            XCTAssertGreaterThan(direct.item, 0)
            XCTAssertEqual(cached.item, direct.item, "value \(shape)")
            direct.backward()
            cached.backward()
            XCTAssertEqual(a.grad!.scalars, b.grad!.scalars, "gradient \(shape)")
        }
    }

    /// The fused edge-stopping op (`EdgeStopOfNorm`) has a separate branch for p ≠ 2.
    func testPRLWithAnExponentOtherThanTwoMatchesTheSeedAndItsGradient() {
        let pred = Tensor.randomUniform([2, 1, 9, 11], using: &rng)
        let target = randomLabels([2, 1, 9, 11], classes: 2, using: &rng)
        let ours = PhysicalRegularizationLoss(K: 0.5, p: 3)(prediction: pred, target: target).item
        assertClose(ours, naivePRL2D(pred, target, K: 0.5, p: 3), 1e-4, "PRL p 3")
        let small = randomLabels([1, 1, 7, 8], classes: 2, using: &rng)
        assertGradient([Tensor.randomUniform([1, 1, 7, 8], low: 0.2, high: 0.8, using: &rng)], h: 1e-2, rtol: 3e-2) {
            PhysicalRegularizationLoss(K: 0.5, p: 3)(prediction: $0[0], target: small)
        }
    }

    /// Seed 000's PMLoss in Double with dense 2D correlations (F.conv2d semantics, zero padding).
    func naivePRL2D(_ pred: Tensor, _ target: Tensor, K: Double, p: Double = 2, sigma: Double = 1, rho: Double = 0.5) -> Double {
        let (h, w) = (pred.shape[2], pred.shape[3])
        typealias Image = [Double]
        func conv(_ x: Image, _ k: [[Double]]) -> Image {
            let r = k.count / 2
            var out = Image(repeating: 0, count: h * w)
            for y in 0..<h { for xx in 0..<w {
                var s = 0.0
                for a in 0..<k.count { for b in 0..<k.count {
                    let yy = y + a - r, xb = xx + b - r
                    if yy >= 0, yy < h, xb >= 0, xb < w { s += k[a][b] * x[yy * w + xb] }
                } }
                out[y * w + xx] = s
            } }
            return out
        }
        func gaussian(_ sigma: Double) -> [[Double]] {
            var size = Int(2 * (3 * sigma).rounded(.up) + 1)
            if size % 2 == 0 { size += 1 }
            let c = Double(size / 2)
            var k = (0..<size).map { a in (0..<size).map { b in
                Foundation.exp(-((Double(a) - c) * (Double(a) - c) + (Double(b) - c) * (Double(b) - c)) / (2 * sigma * sigma)) } }
            let total = k.flatMap { $0 }.reduce(0, +)
            k = k.map { $0.map { $0 / total } }
            return k
        }
        let sx: [[Double]] = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], sy: [[Double]] = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
        func edge(_ v: Double) -> Double { 1 / (1 + Foundation.pow(abs(v) / K, p)) }
        func div(_ img: Image, _ g: Image) -> Image {
            let fx = zip(g, conv(img, sx)).map(*), fy = zip(g, conv(img, sy)).map(*)
            return zip(conv(fx, sx), conv(fy, sy)).map(+)
        }
        func components(_ img: Image) -> (Image, Image) {
            let s = conv(img, gaussian(sigma))
            let ix = conv(s, sx), iy = conv(s, sy)
            let norm = zip(ix, iy).map { ($0 * $0 + $1 * $1 + 1e-6).squareRoot() }
            let j11 = conv(ix.map { $0 * $0 }, gaussian(rho)), j22 = conv(iy.map { $0 * $0 }, gaussian(rho))
            let gI = zip(j11, j22).map { edge(($0 + $1 + 1e-6).squareRoot()) }
            let gJ = norm.map(edge)
            return (div(img, gI), zip(div(j11, gJ), div(j22, gJ)).map(+))
        }
        var total = 0.0
        let n = pred.shape[0]
        var di = 0.0, dj = 0.0
        for item in 0..<n {
            let a = (0..<(h * w)).map { Double(pred[flat: item * h * w + $0]) }
            let b = (0..<(h * w)).map { Double(target[flat: item * h * w + $0]) }
            let (ip, jp) = components(a), (it, jt) = components(b)
            di += zip(ip, it).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
            dj += zip(jp, jt).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
        }
        total = (di + dj) / Double(n * h * w)
        return total
    }

    func testPRL2DMatchesADenseImplementationOfTheSeed() {
        for K in [0.5, 20.0] {
            let pred = Tensor.randomUniform([2, 1, 9, 11], using: &rng)
            let target = randomLabels([2, 1, 9, 11], classes: 2, using: &rng)
            let ours = PhysicalRegularizationLoss(K: Float(K))(prediction: pred, target: target).item
            assertClose(ours, naivePRL2D(pred, target, K: K), 1e-4, "PRL K \(K)")
        }
    }
}
