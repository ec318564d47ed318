import Foundation
import MorphoIO
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// The demo run.
final class DemoTests: XCTestCase {
    func testDemoConfigIsTheEmbeddedDefault() throws {
        let path = Repository.config("demo-seg.yaml")
        let file = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertEqual(file.trimmingCharacters(in: .whitespacesAndNewlines), Demo.configYAML.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
