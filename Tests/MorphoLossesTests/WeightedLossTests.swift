import MorphoLosses
import MorphoTensor
import XCTest

/// Weighted sums of named loss terms.
final class WeightedLossTests: XCTestCase {
    func testWeightedLossSumsWeightedTermsAndReportsEach() throws {
        var rng = RandomGenerator(seed: 29)
        let logits = Tensor.randomNormal([1, 2, 6, 6], using: &rng)
        let labels = randomLabels([1, 1, 6, 6], classes: 2, using: &rng)
        let maps = signedDistanceMaps(labels: labels, classes: 2, spatial: [6, 6])
        struct Batch { var logits: Tensor; var labels: Tensor; var maps: Tensor }
        let loss = try WeightedLoss<Batch>.regionalBoundary(
            regional: ("dice", { SoftDiceLoss()(logits: $0.logits, labels: $0.labels) }),
            boundary: ("boundary", { BoundaryLoss()(probs: $0.logits.softmax(), distanceMaps: $0.maps) }),
            schedule: .paperDefault)
        let leaf = logits.requiringGrad()
        let value = loss(Batch(logits: leaf, labels: labels, maps: maps), epoch: 3)
        let dice = SoftDiceLoss()(logits: logits, labels: labels).item
        let boundary = BoundaryLoss()(probs: logits.softmax(), distanceMaps: maps).item
        XCTAssertEqual(value.terms.map(\.name), ["dice", "boundary"])
        XCTAssertEqual(value["dice"]?.weight ?? 0, 0.96, accuracy: 1e-12)
        XCTAssertEqual(value["boundary"]?.weight ?? 0, 0.04, accuracy: 1e-12)
        XCTAssertEqual(value["dice"]?.value, dice)
        XCTAssertEqual(value["boundary"]?.value, boundary)
        XCTAssertEqual(value.total.item, 0.96 * dice + 0.04 * boundary, accuracy: 1e-6)
        value.total.backward()
        XCTAssertNotNil(leaf.grad)
    }

    func testZeroWeightTermIsLoggedButNotDifferentiated() throws {
        let x = Tensor(shape: [3], data: [1, 2, 3]).requiringGrad()
        let loss = try WeightedLoss<Tensor>([
            LossTerm("sum", { $0.sum() }),
            LossTerm("squares", weight: LinearWeight(start: 0, step: 1), { $0.squared().sum() }),
        ])
        let first = loss(x, epoch: 0)
        XCTAssertEqual(first["squares"]?.value, 14)
        XCTAssertEqual(first["squares"]?.weighted, 0)
        first.total.backward()
        XCTAssertEqual(x.grad?.scalars, [1, 1, 1])
        x.zeroGrad()
        loss(x, epoch: 2).total.backward()
        XCTAssertEqual(x.grad?.scalars, [5, 9, 13])   // 1 + 2·2·x
    }

    func testDuplicateTermNamesAreRejected() {
        XCTAssertThrowsError(try WeightedLoss<Tensor>([LossTerm("a", { $0.sum() }), LossTerm("a", { $0.mean() })])) { error in
            XCTAssertEqual(error as? LossError, .duplicateTerm(name: "a"))
        }
    }
}
