import XCTest
final class MorphoIOTestsPlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
