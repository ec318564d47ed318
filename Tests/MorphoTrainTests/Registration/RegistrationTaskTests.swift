import Foundation
import MorphoIO
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain

/// The registration task's loss terms.
final class RegistrationTaskTests: XCTestCase, TinyRegistrationRun {
    func testSemiSupervisedDiceTermNeedsLabelsAndIsLogged() throws {
        let config = try RegistrationRunConfig(yaml: tinyConfig(loss: "loss: {dice: {weight: 0.5}}"))
        let task = try RegistrationTask(config: config)
        let batch = task.makeBatch(1, 0)
        XCTAssertEqual(batch.fixed.shape, [4, 1, 32, 32])
        XCTAssertNotNil(batch.movingLabels)
        let value = task.loss(batch, epoch: 0)
        XCTAssertEqual(value.terms.map(\.name), ["lcc", "grad_l2", "dice"])
        XCTAssertEqual(value["dice"]?.weight, 0.5)
        XCTAssertTrue(value.total.item.isFinite)
    }

    /// Without a Dice term the training batches carry no label maps (nothing reads them); the
    /// validation pairs keep theirs for the Dice metrics.
    func testTrainingBatchesCarryLabelMapsOnlyForTheDiceTerm() throws {
        let task = try RegistrationTask(config: RegistrationRunConfig(yaml: tinyConfig()))
        let batch = task.makeBatch(1, 0)
        XCTAssertNil(batch.movingLabels)
        XCTAssertNil(batch.fixedLabels)
        XCTAssertNil(batch.movingForeground)
        XCTAssertNil(batch.fixedForeground)
        XCTAssertNotNil(task.dataset.validation[0].moving.labels)
        XCTAssertNotNil(task.dataset.batch([task.dataset.validation[0]]).movingLabels)
        XCTAssertTrue(task.loss(batch, epoch: 0).total.item.isFinite)
    }

    func testSoftDiceLossGradientMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 11)
        let logits = Tensor.randomNormal([2, 3, 5, 6], using: &rng)
        let labels = Tensor(shape: [2, 1, 5, 6], data: (0..<60).map { Float($0 % 3) })
        let target = oneHot(labels, classes: 3)
        XCTAssertEqual(target.sum().item, 60)
        let check = GradientCheck.check([logits.softmax()], h: 1e-3, rtol: 2e-2) { xs in softDiceLoss(xs[0], target) }
        XCTAssertTrue(check.passed, "\(check)")
        XCTAssertGreaterThan(check.maxReference, 0)
        XCTAssertEqual(softDiceLoss(target, target).item, 0, accuracy: 1e-6)
    }
}
