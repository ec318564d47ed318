import Foundation
import MorphoIO
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain

/// The demo run.
final class DemoTests: XCTestCase {
    func testDemoConfigIsTheEmbeddedDefault() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Configs/demo-seg.yaml").path
        let file = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertEqual(file.trimmingCharacters(in: .whitespacesAndNewlines), Demo.configYAML.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
