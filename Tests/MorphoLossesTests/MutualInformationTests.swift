import Foundation
import MorphoLosses
import MorphoTensor
import MorphoTestSupport
import XCTest

final class MutualInformationTests: XCTestCase {
    var rng = RandomGenerator(seed: 27)

    /// `((v·a + b) mod c) / d` for v = 0…335 as `[1, 1, 6, 7, 8]`: deterministic inputs that the
    /// MONAI script below rebuilds exactly.
    func pattern(_ a: Int, _ b: Int, _ c: Int, _ d: Float) -> [Float] { (0..<336).map { Float(($0 * a + b) % c) / d } }
    func image(_ values: [Float]) -> Tensor { Tensor(shape: [1, 1, 6, 7, 8], data: values) }

    /// Reference values from MONAI 1.x `GlobalMutualInformationLoss` (torch float32), computed by:
    ///
    ///     import torch
    ///     from monai.losses import GlobalMutualInformationLoss as MI
    ///     def img(n, a, b, c, d): return torch.tensor([((v * a + b) % c) / d for v in range(n)], dtype=torch.float32)
    ///     f = img(336, 37, 0, 101, 100.0); m = img(336, 53, 11, 97, 96.0)
    ///     cases = {"gaussian23": (MI(kernel_type="gaussian", num_bins=23, sigma_ratio=0.5), f, m),
    ///              "gaussian16related": (MI(kernel_type="gaussian", num_bins=16, sigma_ratio=1.0), f, (1 - f) ** 2),
    ///              "bspline32": (MI(kernel_type="b-spline", num_bins=32), f, 8 * m - 3),
    ///              "bspline12related": (MI(kernel_type="b-spline", num_bins=12), f, 2 * f ** 3 - f)}
    ///     for name, (loss, fixed, moving) in cases.items():
    ///         mv = moving.clone().reshape(1, 1, 6, 7, 8).requires_grad_()
    ///         value = loss(mv, fixed.reshape(1, 1, 6, 7, 8))   # pred = moving, target = fixed
    ///         value.backward(); g = mv.grad.reshape(-1)
    ///         print(name, value.item(), [g[i].item() for i in (0, 7, 100, 335)])
    ///
    /// (MONAI 1.6.1, torch 2.15, CPU.) Voxel 0 of "gaussian16related" sits on the clamp bound
    /// (moving = 1), where torch's clamp passes no gradient. Tolerance: 2e-5 on the loss (MONAI
    /// sums in float32), 2e-3 relative (or 2e-7 absolute) on gradient entries.
    /// The script's output: loss, then the gradient at voxels 0, 7, 100, 335.
    enum MONAI {
        static let gaussian23 = (-0.59854817, [2.93887686e-02, 3.69486213e-02, 4.03035767e-02, -7.24263415e-02])
        static let gaussian16related = (-1.00610662, [0.0, -1.13601489e-02, -9.62834992e-03, 2.99268868e-04])
        static let bspline32 = (-0.73343062, [7.67581956e-03, 6.11487916e-03, 7.66330212e-03, -2.75209360e-03])
        static let bspline12related = (-0.78133649, [-4.15631151e-03, -1.45615572e-02, -2.25360459e-03, -2.33700480e-02])
    }

    struct Reference {
        var name: String
        var loss: MutualInformation
        var moving: [Float]
        var value: Double
        var gradient: [Double]   // at voxels 0, 7, 100, 335
    }

    func references() -> [Reference] {
        let f = pattern(37, 0, 101, 100), m = pattern(53, 11, 97, 96)
        return [
            Reference(name: "gaussian23", loss: .monaiGaussian(bins: 23, sigmaRatio: 0.5), moving: m,
                      value: MONAI.gaussian23.0, gradient: MONAI.gaussian23.1),
            Reference(name: "gaussian16related", loss: .monaiGaussian(bins: 16, sigmaRatio: 1.0), moving: f.map { (1 - $0) * (1 - $0) },
                      value: MONAI.gaussian16related.0, gradient: MONAI.gaussian16related.1),
            Reference(name: "bspline32", loss: MutualInformation(bins: 32), moving: m.map { 8 * $0 - 3 },
                      value: MONAI.bspline32.0, gradient: MONAI.bspline32.1),
            Reference(name: "bspline12related", loss: MutualInformation(bins: 12), moving: f.map { 2 * $0 * $0 * $0 - $0 },
                      value: MONAI.bspline12related.0, gradient: MONAI.bspline12related.1),
        ]
    }

    func testValuesAndGradientsMatchMONAIsGlobalMutualInformationLoss() {
        let fixed = image(pattern(37, 0, 101, 100))
        var worstValue = 0.0, worstGradient = 0.0
        defer { print(String(format: "MI vs MONAI: worst |Δloss| %.2e, worst relative gradient error %.2e", worstValue, worstGradient)) }
        for reference in references() {
            let moving = image(reference.moving).requiringGrad()
            let loss = reference.loss(fixed, moving)
            XCTAssertEqual(Double(loss.item), reference.value, accuracy: 2e-5, reference.name)
            worstValue = nanStrictMax(worstValue, abs(Double(loss.item) - reference.value))
            loss.backward()
            let grad = moving.grad!
            for (k, v) in [0, 7, 100, 335].enumerated() {
                let expected = reference.gradient[k]
                if expected != 0 { worstGradient = nanStrictMax(worstGradient, abs(Double(grad[flat: v]) - expected) / abs(expected)) }
                XCTAssertEqual(Double(grad[flat: v]), expected, accuracy: max(2e-3 * abs(expected), 2e-7),
                               "\(reference.name) gradient at \(v)")
            }
        }
    }

    func testGradientsMatchFiniteDifferencesForBothWindows() {
        let fixed = Tensor.randomUniform([1, 1, 5, 6, 7], using: &rng)
        let moving = Tensor.randomUniform([1, 1, 5, 6, 7], using: &rng) * 0.8 + 0.1
        // B-spline: includes the min/max path; h small enough not to reorder the extremes.
        assertGradient([moving * 3 - 1], h: 1e-3, rtol: 3e-2, atol: 1e-5) { MutualInformation(bins: 16)(fixed, $0[0]) }
        assertGradient([moving], h: 1e-3, rtol: 3e-2, atol: 1e-5) { MutualInformation.monaiGaussian(bins: 12, sigmaRatio: 0.7)(fixed, $0[0]) }
        // A related pair (high MI) in 2D, batch of two, with a mask.
        let f2 = Tensor.randomUniform([2, 1, 9, 8], using: &rng)
        let m2 = withoutGradients { (f2 - 0.5).squared() * 2 + Tensor.randomUniform([2, 1, 9, 8], using: &rng) * 0.05 }
        let mask = Tensor(shape: [1, 1, 9, 8]) { p in for v in 0..<72 { p[v] = v % 5 == 0 ? 0 : 1 } }
        assertGradient([m2], h: 1e-3, rtol: 3e-2, atol: 1e-5) { MutualInformation(bins: 10)(f2, $0[0], mask: mask) }
    }

    func testMutualInformationIsInvariantToInvertingTheContrastUnlikeMSE() {
        let fixed = Tensor.randomUniform([1, 1, 8, 9, 10], using: &rng)
        let moving = withoutGradients { fixed.squared() + Tensor.randomUniform([1, 1, 8, 9, 10], using: &rng) * 0.1 }
        let inverted = withoutGradients { 1 - moving }
        // MONAI's Gaussian window on [0, 1]: inverting maps bin position t to B − 1 − t exactly and
        // the bin centres are symmetric, so the histogram is mirrored and MI unchanged.
        let gaussian = MutualInformation.monaiGaussian(bins: 20, sigmaRatio: 0.5)
        XCTAssertLessThan(gaussian(fixed, moving).item, -0.3, "a related pair has clearly positive MI")
        XCTAssertEqual(gaussian(fixed, inverted).item, gaussian(fixed, moving).item, accuracy: 1e-5)
        // Mattes' B-spline window maps by min/max with MONAI's asymmetric clamp of the top bin: equal to 1 %.
        let mattes = MutualInformation()
        XCTAssertEqual(mattes(fixed, inverted).item, mattes(fixed, moving).item, accuracy: 0.01 * abs(mattes(fixed, moving).item))
        let mse = MeanSquaredError()
        XCTAssertGreaterThan(abs(mse(fixed, inverted).item - mse(fixed, moving).item), 0.1)
    }

    func testIndependentImagesHaveLittleInformationAndAnImageWithItselfTheMost() {
        let a = Tensor.randomUniform([1, 1, 20, 20, 20], using: &rng), b = Tensor.randomUniform([1, 1, 20, 20, 20], using: &rng)
        let mi = MutualInformation(bins: 16)
        XCTAssertGreaterThan(mi(a, b).item, -0.05)
        XCTAssertLessThan(mi(a, a).item, mi(a, b).item - 1)
    }

    func testMaskedOutVoxelsDoNotChangeTheValue() {
        let fixed = Tensor.randomUniform([1, 1, 6, 6, 6], using: &rng), moving = Tensor.randomUniform([1, 1, 6, 6, 6], using: &rng)
        let mask = Tensor(shape: [1, 1, 6, 6, 6]) { p in for v in 0..<216 { p[v] = v < 150 ? 1 : 0 } }
        var corrupted = moving.scalars
        for v in 150..<216 { corrupted[v] = 50 }   // outside the mask, even beyond the range
        let mi = MutualInformation()
        XCTAssertEqual(mi(fixed, Tensor(shape: moving.shape, data: corrupted), mask: mask).item, mi(fixed, moving, mask: mask).item)
        XCTAssertNotEqual(mi(fixed, Tensor(shape: moving.shape, data: corrupted)).item, mi(fixed, moving).item)
    }

    /// The backward reads the mask after the caller has let go of it (the graph keeps it alive).
    func testTheGradientDoesNotDependOnTheCallerKeepingTheMask() {
        let fixed = Tensor.randomUniform([1, 1, 12, 12, 12], using: &rng), moving = Tensor.randomUniform([1, 1, 12, 12, 12], using: &rng)
        let maskValues = (0..<1728).map { Float($0 % 3 == 0 ? 0 : 1) }
        func loss(_ leaf: Tensor) -> Tensor { MutualInformation()(fixed, leaf, mask: Tensor(shape: fixed.shape, data: maskValues)) }
        let a = moving.requiringGrad(), kept = Tensor(shape: fixed.shape, data: maskValues)
        MutualInformation()(fixed, a, mask: kept).backward()
        let b = moving.requiringGrad()
        let value = loss(b)
        _ = (0..<8).map { _ in Tensor(shape: fixed.shape, repeating: 9) }   // reuse freed memory, if any
        value.backward()
        XCTAssertEqual(a.grad!.scalars, b.grad!.scalars)
    }

    func testDegenerateInputsGiveZeroLossAndAnEmptyMaskGivesZeroGradient() {
        let constant = Tensor(shape: [1, 1, 4, 4], repeating: 0.3)
        let other = Tensor.randomUniform([1, 1, 4, 4], using: &rng).requiringGrad()
        let loss = MutualInformation()(other.detached(), constant.requiringGrad())
        XCTAssertEqual(loss.item, 0, accuracy: 1e-5)
        let empty = MutualInformation()(constant, other, mask: Tensor.zeros([1, 1, 4, 4]))
        XCTAssertEqual(empty.item, 0)
        empty.backward()
        // No voxel is inside the mask, so none can change the loss: the gradient is 0, not just finite.
        XCTAssertEqual(other.grad!.scalars, [Float](repeating: 0, count: 16))
    }
}
