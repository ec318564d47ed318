import MorphoLosses
import MorphoTensor
import XCTest

final class SchedulesTests: XCTestCase {
    func testRebalanceFloorsTheRegionalWeight() {
        let s = AlphaSchedule.rebalance(alpha0: 0.05, delta: 0.05)
        XCTAssertEqual(s.weights(epoch: 0).regional, 0.95, accuracy: 1e-12)
        XCTAssertEqual(s.weights(epoch: 0).boundary, 0.05, accuracy: 1e-12)
        XCTAssertEqual(s.weights(epoch: 9).regional, 0.5, accuracy: 1e-12)
        XCTAssertEqual(s.weights(epoch: 17).regional, 0.1, accuracy: 1e-12)
        XCTAssertEqual(s.weights(epoch: 40).regional, 0.1, "floored at 0.1 once α passes 0.9")
        XCTAssertEqual(s.weights(epoch: 40).boundary, 2.05, accuracy: 1e-12, "α keeps growing without a cap")
    }

    func testCapStopsAlpha() {
        let s = AlphaSchedule(kind: .rebalance, alpha0: 0.01, delta: 0.01, floor: 0.2, cap: 0.5)
        XCTAssertEqual(s.alpha(epoch: 100), 0.5)
        XCTAssertEqual(s.weights(epoch: 100).regional, 0.5)
        let inc = AlphaSchedule(kind: .increase, alpha0: 0.01, delta: 0.01, cap: 1)
        XCTAssertEqual(inc.weights(epoch: 500).regional, 1)
        XCTAssertEqual(inc.weights(epoch: 500).boundary, 1)
    }

    func testConstantIgnoresDelta() {
        let s = AlphaSchedule(kind: .constant, alpha0: 0.3, delta: 0.1)
        XCTAssertEqual(AlphaSchedule.constant(alpha: 0.3).weights(epoch: 7).boundary, 0.3)
        for e in [0, 5, 100] {
            XCTAssertEqual(s.weights(epoch: e).regional, 1)
            XCTAssertEqual(s.weights(epoch: e).boundary, 0.3)
        }
    }

    func testUnknownKindIsAnErrorNamingTheKey() {
        XCTAssertThrowsError(try AlphaSchedule(kind: "cosine", alpha0: 0.1, key: "loss.boundary.schedule")) { error in
            XCTAssertEqual(error as? LossError, .unknownScheduleKind(key: "loss.boundary.schedule", value: "cosine"))
            XCTAssertEqual("\(error)", "loss.boundary.schedule: unknown schedule kind 'cosine' (expected constant, increase or rebalance)")
        }
        XCTAssertEqual(try AlphaSchedule(kind: "increase", alpha0: 0.1, delta: 0.2).kind, .increase)
    }

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
