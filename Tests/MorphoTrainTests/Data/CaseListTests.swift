import Foundation
import MorphoIO
import MorphoKernels
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// Finding the image and label files of each case: manifests and globs.
final class CaseListTests: XCTestCase {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("train-data")
    }

    func testMissingFileInAManifestIsNamed() throws {
        let manifest = "\(tempDir)/manifest.csv"
        try "image,label\nnope.nii.gz,nope_label.nii.gz\n".write(toFile: manifest, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CaseList.manifest(manifest, modalities: ["image"])) { error in
            XCTAssertEqual("\(error)", "\(tempDir)/nope.nii.gz: no such image file")
        }
        XCTAssertThrowsError(try CaseList.manifest(manifest, modalities: ["t1"])) { error in
            XCTAssertEqual("\(error)", "\(manifest): no column \"t1\" (columns: image, label)")
        }
        XCTAssertThrowsError(try CaseList.manifest("\(tempDir)/missing.csv", modalities: ["image"])) { error in
            XCTAssertEqual("\(error)", "\(tempDir)/missing.csv: no such manifest file")
        }
    }

    func testGlobsPairFilesByTheirWildcardText() throws {
        for id in ["a", "b"] {
            for suffix in ["t1", "t2", "seg"] {
                FileManager.default.createFile(atPath: "\(tempDir)/\(id)_\(suffix).nii.gz", contents: Data([0]))
            }
        }
        let cases = try CaseList.globs(images: ["\(tempDir)/*_t1.nii.gz", "\(tempDir)/*_t2.nii.gz"], labels: "\(tempDir)/*_seg.nii.gz")
        XCTAssertEqual(cases.map(\.id), ["a", "b"])
        XCTAssertEqual(cases[1].images, ["\(tempDir)/b_t1.nii.gz", "\(tempDir)/b_t2.nii.gz"])
        XCTAssertEqual(cases[1].label, "\(tempDir)/b_seg.nii.gz")
        try FileManager.default.removeItem(atPath: "\(tempDir)/b_t2.nii.gz")
        XCTAssertThrowsError(try CaseList.globs(images: ["\(tempDir)/*_t1.nii.gz", "\(tempDir)/*_t2.nii.gz"], labels: "\(tempDir)/*_seg.nii.gz")) { error in
            XCTAssertEqual("\(error)", "\(tempDir)/*_t2.nii.gz: no image for label \(tempDir)/b_seg.nii.gz")
        }
    }
}
