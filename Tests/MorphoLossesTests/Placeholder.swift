import XCTest
final class MorphoLossesTestsPlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
