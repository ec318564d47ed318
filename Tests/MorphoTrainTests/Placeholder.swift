import XCTest
final class MorphoTrainTestsPlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
