import XCTest
final class MorphoTensorTestsPlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
