import XCTest
final class MorphoNNTestsPlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
