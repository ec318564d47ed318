import Foundation
import MorphoIO
import MorphoTestSupport
import XCTest

/// `OutputPaths.checkDistinct`: an output never resolves to an input or to another output, however
/// the paths are spelled.
final class OutputPathsTests: XCTestCase {
    func testAnOutputThatIsTheInputIsRefusedNamingBoth() throws {
        let folder = try temporaryFolder("output-paths")
        let input = folder + "/scan.nii.gz"
        XCTAssertThrowsError(try OutputPaths.checkDistinct(inputs: [input], outputs: [("--output", input)])) { error in
            XCTAssertEqual(error as? MorphoIOError, .outputIsInput(output: input, option: "--output", input: input))
            XCTAssertEqual("\(error)", "\(input): --output is the input \(input); outputs never overwrite inputs, choose another path")
        }
    }

    func testOtherSpellingsOfTheSameFileAreCaught() throws {
        let folder = try temporaryFolder("output-paths")
        let input = folder + "/scan.nii.gz"
        FileManager.default.createFile(atPath: input, contents: Data([1]))
        try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: folder + "/link.nii.gz", withDestinationPath: input)
        try FileManager.default.createSymbolicLink(atPath: folder + "/alias", withDestinationPath: folder)
        for spelling in [folder + "/./scan.nii.gz", folder + "/sub/../scan.nii.gz", folder + "/link.nii.gz", folder + "/alias/scan.nii.gz"] {
            XCTAssertThrowsError(try OutputPaths.checkDistinct(inputs: [input], outputs: [("--output", spelling)]), spelling)
        }
        let cwd = FileManager.default.currentDirectoryPath
        defer { FileManager.default.changeCurrentDirectoryPath(cwd) }
        FileManager.default.changeCurrentDirectoryPath(folder)
        XCTAssertThrowsError(try OutputPaths.checkDistinct(inputs: [input], outputs: [("--output", "scan.nii.gz")]))
    }

    func testTwoOutputsOnOneFileAreRefused() throws {
        let folder = try temporaryFolder("output-paths")
        XCTAssertThrowsError(try OutputPaths.checkDistinct(
            inputs: [folder + "/in.nii"], outputs: [("--output-warped", folder + "/w.nii.gz"), ("--output-field", folder + "/./w.nii.gz")])
        ) { error in
            XCTAssertEqual(error as? MorphoIOError, .outputsCollide(path: folder + "/./w.nii.gz", first: "--output-warped", second: "--output-field"))
        }
    }

    func testDistinctPathsPass() throws {
        let folder = try temporaryFolder("output-paths")
        XCTAssertNoThrow(try OutputPaths.checkDistinct(
            inputs: [folder + "/f.nii.gz", folder + "/m.nii.gz"],
            outputs: [("--output-warped", folder + "/w.nii.gz"), ("--output-field", folder + "/u.nii.gz")]))
    }
}
