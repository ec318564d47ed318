import XCTest
@testable import MorphoTrain

/// `metrics.jsonl` lines read back as the numbers that were written, bit for bit: a resumed run
/// keeps the log lines of the epochs its checkpoint covers, and its history must equal the
/// uninterrupted run's.
final class EpochRecordTests: XCTestCase {
    func testAParsedLineGivesBackEveryNumberExactly() throws {
        // Foundation's JSON parser reads 31.78085517883302 as 31.780855178833008.
        let record = EpochRecord(
            epoch: 3, learningRate: 1e-4, scalars: [("alpha", 0.30000000000000004)], loss: 31.78085517883302,
            terms: [("dice", 0.1 + 0.2), ("ncc", -0.7234987234982348)], weights: [("dice", 0.7)],
            validation: [("dice.1", 0.9123456789012345), ("folding", .nan)], seconds: 1.25)
        let parsed = try XCTUnwrap(EpochRecord(json: record.json))
        XCTAssertEqual(parsed.epoch, 3)
        XCTAssertEqual(parsed.learningRate, 1e-4)
        XCTAssertEqual(parsed.loss, 31.78085517883302)
        XCTAssertEqual(parsed.scalars.map(\.name), ["alpha"])
        XCTAssertEqual(parsed.scalars.map(\.value), [0.30000000000000004])
        XCTAssertEqual(parsed.terms.map(\.value), [0.1 + 0.2, -0.7234987234982348])
        XCTAssertEqual(parsed.weights.map(\.value), [0.7])
        XCTAssertEqual(parsed.validation.map(\.name), ["dice.1", "folding"])
        XCTAssertEqual(parsed.validation[0].value, 0.9123456789012345)
        XCTAssertEqual(parsed.validation[1].value, .infinity, "null (a NaN written) reads back as not finite")
        XCTAssertEqual(parsed.seconds, 1.25)
        XCTAssertEqual(parsed.json, record.json)
    }
}
