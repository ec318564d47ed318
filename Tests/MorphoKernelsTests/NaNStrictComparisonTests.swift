import XCTest
import MorphoTestSupport

/// The comparisons the kernel, tensor, loss and fixture tests accumulate their worst error with
/// must not let a NaN through: `max(0, NaN)` is 0, which made a NaN output look exact.
final class NaNStrictComparisonTests: XCTestCase {
    func testNaNStrictMaxKeepsANaNOnEitherSide() {
        XCTAssertTrue(nanStrictMax(0.0, .nan).isNaN)
        XCTAssertTrue(nanStrictMax(Double.nan, 0).isNaN)
        XCTAssertTrue(nanStrictMax(Float(1), .nan).isNaN)
        XCTAssertEqual(nanStrictMax(1.0, 2.0), 2.0)
        XCTAssertEqual(Swift.max(0.0, Double.nan), 0.0, "the trap this guards against")
    }

    func testMaxAbsDifferenceFailsOnASingleNaNEntry() {
        XCTAssertTrue(maxAbsDifference([0, 1, 2, 3], [0, 1, .nan, 3]).isNaN)
        XCTAssertTrue(maxAbsDifference([.nan, 1], [0, 1]).isNaN)
        XCTAssertEqual(maxAbsDifference([0, 1, 2], [0, 1.5, 2]), 0.5)
    }
}
