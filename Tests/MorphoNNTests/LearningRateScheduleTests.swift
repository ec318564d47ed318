import XCTest
import MorphoTensor
@testable import MorphoNN

/// The learning-rate schedules.
final class LearningRateScheduleTests: XCTestCase {
    func testLearningRateSchedulesFollowTheirFormulas() {
        XCTAssertEqual(LearningRateSchedule.constant.learningRate(base: 0.1, step: 500), 0.1)
        XCTAssertEqual(LearningRateSchedule.poly(power: 1, total: 100).learningRate(base: 0.1, step: 50), 0.05, accuracy: 1e-7)
        XCTAssertEqual(LearningRateSchedule.poly(power: 0.9, total: 100).learningRate(base: 0.1, step: 0), 0.1)
        XCTAssertEqual(LearningRateSchedule.poly(power: 0.9, total: 100).learningRate(base: 0.1, step: 100), 0)
        let cosine = LearningRateSchedule.cosine(total: 10, minimum: 0.01)
        XCTAssertEqual(cosine.learningRate(base: 0.1, step: 0), 0.1, accuracy: 1e-7)
        XCTAssertEqual(cosine.learningRate(base: 0.1, step: 5), 0.055, accuracy: 1e-7)
        XCTAssertEqual(cosine.learningRate(base: 0.1, step: 10), 0.01)
        let stepped = LearningRateSchedule.step(every: 3, gamma: 0.5)
        XCTAssertEqual(stepped.learningRate(base: 0.1, step: 2), 0.1)
        XCTAssertEqual(stepped.learningRate(base: 0.1, step: 7), 0.025, accuracy: 1e-8)
    }
}
