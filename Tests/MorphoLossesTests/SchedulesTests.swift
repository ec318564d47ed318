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
}
