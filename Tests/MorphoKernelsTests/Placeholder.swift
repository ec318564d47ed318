import XCTest
final class MorphoKernelsTestsPlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
