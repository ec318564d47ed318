import XCTest
import MorphoIO
import MorphoTensor
@testable import MorphoTrain

/// Instance optimisation of one pair.
final class InstanceOptimizationTests: XCTestCase, BlobPairs {
    func testInstanceOptimisationOfAShiftedPairRaisesDiceAndDoesNotFold() {
        let fixed = blobs(20, 28, 24, centre: SIMD3(10, 14, 12))
        let moving = blobs(20, 28, 24, centre: SIMD3(11, 16.5, 10))
        var settings = InstanceOptimization.Settings()
        settings.levels = 2
        settings.iterations = [60, 40]
        settings.lccWindow = 5
        var steps = 0
        let flow = InstanceOptimization(settings).register(fixed: fixed.image, moving: moving.image) { _ in steps += 1 }
        XCTAssertEqual(flow.shape, [1, 3, 20, 28, 24])
        XCTAssertEqual(steps, 100)
        let lccBefore = SimilarityFigures.measure(fixed.image, moving.image, lccWindow: 5).lcc
        let lccAfter = SimilarityFigures.measure(fixed.image, warp(moving.image, flow, mode: .linear), lccWindow: 5).lcc
        XCTAssertGreaterThan(lccAfter, lccBefore + 0.2)
        let warped = warp(moving.labels, flow, mode: .nearest)
        let before = RegistrationMetrics.meanDice(RegistrationMetrics.dicePerLabel(fixed.labels, moving.labels))
        let after = RegistrationMetrics.meanDice(RegistrationMetrics.dicePerLabel(fixed.labels, warped))
        let folding = RegistrationMetrics.jacobianStatistics(ofFlow: flow).foldingFraction
        print("shifted pair: Dice \(before) → \(after), folding \(folding), LCC \(lccBefore) → \(lccAfter)")
        XCTAssertGreaterThan(after, before + 0.15)
        XCTAssertGreaterThan(after, 0.85)
        XCTAssertLessThan(folding, 0.01)
    }

    func testDiffeomorphicOptimisationRaisesDiceWithPositiveJacobianEverywhere() {
        let fixed = blobs(20, 28, 24, centre: SIMD3(10, 14, 12))
        let moving = blobs(20, 28, 24, centre: SIMD3(11, 16.5, 10))
        var settings = InstanceOptimization.Settings()
        settings.levels = 2
        settings.iterations = [60, 40]
        settings.lccWindow = 5
        // A weak smoothness term, where the displacement itself is free to fold.
        settings.smoothness = 0.05
        let plain = InstanceOptimization(settings).register(fixed: fixed.image, moving: moving.image)
        settings.diffeomorphic = true
        let flow = InstanceOptimization(settings).register(fixed: fixed.image, moving: moving.image)
        XCTAssertEqual(flow.shape, [1, 3, 20, 28, 24])
        let before = RegistrationMetrics.meanDice(RegistrationMetrics.dicePerLabel(fixed.labels, moving.labels))
        func dice(_ flow: Tensor) -> Double {
            RegistrationMetrics.meanDice(RegistrationMetrics.dicePerLabel(fixed.labels, warp(moving.labels, flow, mode: .nearest)))
        }
        let jacobian = RegistrationMetrics.jacobianStatistics(ofFlow: flow)
        let plainJacobian = RegistrationMetrics.jacobianStatistics(ofFlow: plain)
        print("λ 0.05: Dice \(before) → \(dice(plain)) (displacement, folding \(plainJacobian.foldingFraction), min det \(plainJacobian.minimum)) / "
              + "\(dice(flow)) (velocity, folding \(jacobian.foldingFraction), min det \(jacobian.minimum))")
        XCTAssertGreaterThan(dice(flow), before + 0.15)
        XCTAssertGreaterThan(dice(flow), 0.85)
        XCTAssertEqual(jacobian.foldingCount, 0)
        XCTAssertGreaterThan(jacobian.minimum, 0)
        XCTAssertGreaterThan(plainJacobian.foldingCount, 0, "the displacement folds at this weight")
    }

    func testDiffeomorphicFieldIsTheIntegratedVelocityOfTheInitialField() {
        // With no steps the result is the initial field itself (plain) or its exponential (diffeomorphic).
        var rng = RandomGenerator(seed: 7)
        let initial = SmoothRandomField(smoothing: 5, maxDisplacement: 1.5, integrationSteps: 0).sample(spatial: [12, 14, 10], using: &rng)
        let image = Tensor.randomNormal([1, 1, 12, 14, 10], std: 1, using: &rng)
        var settings = InstanceOptimization.Settings()
        settings.levels = 1
        settings.iterations = [0]
        XCTAssertEqual(InstanceOptimization(settings).register(fixed: image, moving: image, initial: initial).scalars, initial.scalars)
        settings.diffeomorphic = true
        settings.integrationSteps = 5
        settings.velocityGridFactor = 1
        let integrated = InstanceOptimization(settings).register(fixed: image, moving: image, initial: initial)
        XCTAssertEqual(integrated.scalars, integrate(initial, steps: 5).scalars)
        // On a grid twice coarser, the velocity is resized there and its exponential resized back.
        settings.velocityGridFactor = 2
        let coarse = InstanceOptimization(settings).register(fixed: image, moving: image, initial: initial)
        let expected = resizeDisplacement(integrate(resizeDisplacement(initial, to: [6, 7, 5]), steps: 5), to: [12, 14, 10])
        XCTAssertEqual(coarse.scalars, expected.scalars)
    }

    /// `--similarity mi` without `--smoothness` / `--learning-rate` takes the values tuned for MI on
    /// the hard MNI152 pairs (λ 8, step 0.5); LCC keeps the settings every other default assumes.
    func testMutualInformationHasItsOwnTunedDefaults() {
        XCTAssertEqual(InstanceOptimization.Settings(similarity: .lcc), InstanceOptimization.Settings())
        let mi = InstanceOptimization.Settings(similarity: .mi)
        XCTAssertEqual(mi.similarity, .mi)
        XCTAssertEqual(mi.smoothness, 8)
        XCTAssertEqual(mi.learningRate, 0.5)
        XCTAssertEqual(mi.iterations, InstanceOptimization.Settings().iterations)
    }
}
