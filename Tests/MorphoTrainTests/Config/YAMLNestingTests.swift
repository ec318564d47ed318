import Foundation
import MorphoIO
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// YAML nested thousands of levels deep used to overflow the stack in Yams' composer (a
/// segfault), from a config file or from the config embedded in a checkpoint. The nesting is
/// measured on the text first and refused with one line naming the file.
final class YAMLNestingTests: XCTestCase {
    static let depth = 5000

    private func assertRefused(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try RunConfig(yaml: yaml, file: "deep.yaml"), file: file, line: line) { error in
            guard case MorphoTrainError.configSyntax("deep.yaml", let message) = error else {
                return XCTFail("unexpected \(error)", file: file, line: line)
            }
            XCTAssertTrue(message.contains("at most \(YAMLNesting.maximumDepth) levels"), message, file: file, line: line)
        }
    }

    func testFlowCollectionsNestedFiveThousandLevelsAreRefusedNotACrash() {
        assertRefused("model: " + String(repeating: "[", count: Self.depth) + String(repeating: "]", count: Self.depth) + "\n")
        assertRefused("model: " + String(repeating: "{a: ", count: Self.depth) + "1" + String(repeating: "}", count: Self.depth) + "\n")
    }

    func testBlockMappingsNestedFiveThousandLevelsAreRefusedNotACrash() {
        let yaml = (0..<Self.depth).map { String(repeating: " ", count: $0) + "a:" }.joined(separator: "\n") + " 1\n"
        assertRefused(yaml)
    }

    func testSequenceEntriesNestedFiveThousandLevelsOnOneLineAreRefused() {
        assertRefused("model:\n  " + String(repeating: "- ", count: Self.depth) + "x\n")
    }

    func testCheckpointWhoseEmbeddedConfigNestsFiveThousandLevelsIsRefused() throws {
        let folder = try temporaryFolder("yaml-nesting")
        let path = folder + "/deep.safetensors"
        let deep = "name: " + String(repeating: "[", count: Self.depth) + String(repeating: "]", count: Self.depth)
        try SafeTensors.write(
            SafeTensorsFile(tensors: [:], metadata: ["format": Checkpoint.format, "version": "1", "config": deep]), to: path)
        XCTAssertThrowsError(try Checkpoint.read(path)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(path) (embedded config): invalid YAML: nested"), "\(error)")
        }
    }

    /// Brackets inside quotes, comments, plain scalars and block scalars open nothing; real
    /// configs stay far below the bound.
    func testQuotedCommentedAndBlockScalarTextDoesNotCount() throws {
        let brackets = String(repeating: "[", count: 100)
        let yaml = """
            name: "\(brackets)"
            # \(brackets)
            data:
              images: data/img\(brackets).nii
              note: |
                \(brackets)
                  \(String(repeating: "{", count: 100))
            """
        XCTAssertNil(YAMLNesting.firstExcess(in: yaml, limit: 4))
        for file in try FileManager.default.contentsOfDirectory(atPath: Repository.configs) where file.hasSuffix(".yaml") {
            let text = try String(contentsOfFile: Repository.config(file), encoding: .utf8)
            XCTAssertNil(YAMLNesting.firstExcess(in: text, limit: 8), file)
        }
    }

    func testNestingAtTheBoundStillParses() throws {
        let depth = YAMLNesting.maximumDepth - 1
        let yaml = "data:\n  phantom: {count: 4}\nextra: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
        XCTAssertThrowsError(try RunConfig(yaml: yaml)) { error in
            // Parsed by Yams, then refused as an unknown key: the nesting check let it through.
            XCTAssertTrue("\(error)".contains("extra: unknown key"), "\(error)")
        }
    }
}
