import Foundation
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// `segment --input FOLDER` reads an nnU-Net imagesTs folder by case (channel files grouped,
/// outputs named like the labelsTs references) and any other folder file by file.
final class InputFolderTests: XCTestCase {
    func touch(_ dir: String, _ names: [String]) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for n in names { FileManager.default.createFile(atPath: "\(dir)/\(n)", contents: Data()) }
    }

    func testNNUNetChannelFilesAreGroupedByCaseAndNamedWithoutTheChannel() throws {
        let dir = try temporaryFolder("inputs") + "/imagesTs"
        try touch(dir, ["b_0001.nii.gz", "a_0000.nii.gz", "b_0000.nii.gz", "a_0001.nii.gz", "notes.txt"])
        let cases = try InputFolder.cases(in: dir, channels: 2)
        XCTAssertEqual(cases, [
            .init(inputs: ["\(dir)/a_0000.nii.gz", "\(dir)/a_0001.nii.gz"], outputName: "a.nii.gz"),
            .init(inputs: ["\(dir)/b_0000.nii.gz", "\(dir)/b_0001.nii.gz"], outputName: "b.nii.gz"),
        ])
    }

    func testPlainFilesKeepTheirNamesForASingleChannelModel() throws {
        let dir = try temporaryFolder("inputs") + "/plain"
        try touch(dir, ["brain_0000.nii.gz", "brain2.nii"])
        let cases = try InputFolder.cases(in: dir, channels: 1)
        XCTAssertEqual(cases.map(\.outputName), ["brain2.nii", "brain_0000.nii.gz"])
        XCTAssertEqual(cases.map(\.inputs), [["\(dir)/brain2.nii"], ["\(dir)/brain_0000.nii.gz"]])
    }

    func testMissingChannelOfAnNNUNetCaseNamesTheFile() throws {
        let dir = try temporaryFolder("inputs") + "/imagesTs"
        try touch(dir, ["a_0000.nii.gz", "a_0001.nii.gz", "b_0000.nii.gz"])
        XCTAssertThrowsError(try InputFolder.cases(in: dir, channels: 2)) { error in
            XCTAssertTrue("\(error)".contains("b_0000.nii.gz"), "\(error)")
            XCTAssertTrue("\(error)".contains("case b has channels 0000"), "\(error)")
        }
    }

    /// A Decathlon `imagesTs` folder: each plain file is one case, a 4D image holding every
    /// channel of a multi-channel model, and keeps its name.
    func testPlainFilesAreFourDimensionalCasesOfAMultiChannelModel() throws {
        let plain = try temporaryFolder("inputs") + "/imagesTs"
        try touch(plain, ["la_003.nii.gz", "la_001.nii.gz"])
        let cases = try InputFolder.cases(in: plain, channels: 2)
        XCTAssertEqual(cases.map(\.outputName), ["la_001.nii.gz", "la_003.nii.gz"])
        XCTAssertEqual(cases.map(\.inputs), [["\(plain)/la_001.nii.gz"], ["\(plain)/la_003.nii.gz"]])
    }
}
