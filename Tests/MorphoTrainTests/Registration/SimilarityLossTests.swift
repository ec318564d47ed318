import Foundation
import MorphoLosses
import MorphoTensor
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

/// `SimilarityLoss`: the `mi` kind from configs, and masks for every kind.
final class SimilarityLossTests: XCTestCase, TinyRegistrationRun {
    var rng = RandomGenerator(seed: 5)

    func testMutualInformationIsASimilarityOfRegistrationConfigs() throws {
        let config = try RegistrationRunConfig(yaml: tinyConfig(loss: "loss: {similarity: {kind: mi}}"), file: "x.yaml")
        XCTAssertEqual(config.registration.similarity.kind, .mi)
        XCTAssertEqual(try RegistrationRunConfig(yaml: config.yaml), config, "the resolved config names mi and reads back")
        let fixed = Tensor.randomUniform([1, 1, 6, 6, 6], using: &rng)
        XCTAssertEqual(config.registration.similarity(fixed, fixed).item, MutualInformation()(fixed, fixed).item)
    }

    /// What lies outside the mask does not change any kind's value, or its gradient inside.
    func testMaskedOutVoxelsDoNotChangeAnyKind() {
        let fixed = Tensor.randomUniform([1, 1, 8, 8, 8], using: &rng), moving = Tensor.randomUniform([1, 1, 8, 8, 8], using: &rng)
        let mask = Tensor(shape: [1, 1, 8, 8, 8]) { p in for v in 0..<512 { p[v] = v < 320 ? 1 : 0 } }
        var corrupted = moving.scalars
        for v in 320..<512 { corrupted[v] = 7 }
        let other = Tensor(shape: moving.shape, data: corrupted)
        for kind in SimilarityKind.allCases {
            let loss = SimilarityLoss(kind: kind, window: 3)
            XCTAssertEqual(loss(fixed, other, mask: mask).item, loss(fixed, moving, mask: mask).item, accuracy: 1e-6, "\(kind)")
            XCTAssertNotEqual(loss(fixed, other).item, loss(fixed, moving).item, "\(kind) sees the corruption without a mask")
        }
    }

    func testMaskedMSEIsTheMeanOverTheMask() {
        let fixed = Tensor(shape: [1, 1, 2, 2], data: [0, 0, 0, 0]), moving = Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4])
        let mask = Tensor(shape: [1, 1, 2, 2], data: [1, 1, 0, 0])
        XCTAssertEqual(SimilarityLoss(kind: .mse)(fixed, moving, mask: mask).item, 2.5)
        let leaf = moving.requiringGrad()
        SimilarityLoss(kind: .mse)(fixed, leaf, mask: mask).backward()
        XCTAssertEqual(leaf.grad!.scalars, [1, 2, 0, 0])
    }
}
