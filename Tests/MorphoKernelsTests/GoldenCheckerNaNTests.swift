import MorphoConformance
import MorphoTensor
import MorphoTestSupport
import XCTest

/// The golden-fixture checkers (`Fixture.assertClose`, `GoldenCase.assertClose`) fail on a single
/// NaN entry of our output, and pass the same output without it. The failures they record are
/// caught here (`recordFailure` is overridden) instead of failing this test.
final class GoldenCheckerNaNTests: XCTestCase {
    private var caught: [String] = []
    private var catching = false

    override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int, expected: Bool) {
        if catching { caught.append(description) } else {
            super.recordFailure(withDescription: description, inFile: filePath, atLine: lineNumber, expected: expected)
        }
    }

    /// The failures `body` records.
    private func failures(_ body: () -> Void) -> [String] {
        caught = []
        catching = true
        body()
        catching = false
        return caught
    }

    func testFixtureCheckerFailsOnASingleNaNEntry() throws {
        let fixture = try GoldenFixtures.named("balanced_ce_2d_c2")
        let exact = fixture.output.data.map { Float($0) }
        XCTAssertEqual(failures { fixture.assertClose(exact, fixture.output, "output") }, [])
        var poisoned = exact
        poisoned[poisoned.count / 2] = .nan
        XCTAssertEqual(failures { fixture.assertClose(poisoned, fixture.output, "output") }.count, 1)
    }

    func testGoldenCaseCheckerFailsOnASingleNaNEntry() throws {
        let golden = try GoldenCase("balanced_ce_2d_c2")
        XCTAssertEqual(failures { golden.assertClose(golden.output, golden.output, "output") }, [])
        var scalars = golden.output.scalars
        scalars[scalars.count - 1] = .nan
        let poisoned = Tensor(shape: golden.output.shape, data: scalars)
        XCTAssertEqual(failures { golden.assertClose(poisoned, golden.output, "output") }.count, 1)
    }
}
