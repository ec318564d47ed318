import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// `morphoseg register`: its outputs appear together or not at all, and non-finite images are
/// refused unless `--nan-as` is given.
final class RegisterCommandTests: XCTestCase {
    private func blob(_ path: String, shift: Int, nanEvery: Int? = nil) throws {
        let n = 32
        let data = (0..<(n * n)).map { i -> Float in
            if let nanEvery, i % nanEvery == 0 { return .nan }
            let x = i % n - n / 2 - shift, y = i / n - n / 2
            return x * x + y * y < 64 ? 1 : 0
        }
        try NIfTI.write(Volume(depth: 1, height: n, width: n, data: data), to: path)
    }

    private func optimize(_ folder: String, _ extra: [String]) throws -> MorphosegProcess.Result {
        try MorphosegProcess.run(
            ["register", "--optimize", "--levels", "1", "--iterations", "2", "--fixed", folder + "/f.nii.gz",
             "--moving", folder + "/m.nii.gz", "--output-warped", folder + "/w.nii.gz"] + extra)
    }

    func testRegisterFailingOnALaterOutputRemovesTheOutputsItWrote() throws {
        let folder = try temporaryFolder("register-outputs")
        try blob(folder + "/f.nii.gz", shift: 0)
        try blob(folder + "/m.nii.gz", shift: 2)
        // The Jacobian is written last, into a folder that does not exist.
        let run = try optimize(folder, ["--output-field", folder + "/u.nii.gz", "--output-jacobian", folder + "/missing/j.nii.gz"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.errors.contains("\(folder)/missing/j.nii.gz"), run.errors)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/w.nii.gz"), "warped image left behind")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/u.nii.gz"), "field left behind")
        let ok = try optimize(folder, ["--output-field", folder + "/u.nii.gz", "--output-jacobian", folder + "/j.nii.gz"])
        XCTAssertEqual(ok.status, 0, ok.errors)
        for name in ["w", "u", "j"] { XCTAssertTrue(FileManager.default.fileExists(atPath: "\(folder)/\(name).nii.gz"), name) }
    }

    func testImageWithNaNVoxelsIsRefusedUnlessNanAsIsGiven() throws {
        let folder = try temporaryFolder("register-nan")
        try blob(folder + "/f.nii.gz", shift: 0)
        try blob(folder + "/m.nii.gz", shift: 2, nanEvery: 4)
        let refused = try optimize(folder, [])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.errors.contains("\(folder)/m.nii.gz: 256 voxels are NaN or infinite"), refused.errors)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/w.nii.gz"))
        let replaced = try optimize(folder, ["--nan-as", "0"])
        XCTAssertEqual(replaced.status, 0, replaced.errors)
    }

    func testDeformRefusesAnImageWithNaNVoxelsUnlessNanAsIsGivenAndNeverReplacesLabels() throws {
        let folder = try temporaryFolder("deform-nan")
        try blob(folder + "/nan.nii.gz", shift: 0, nanEvery: 4)
        try blob(folder + "/labels.nii.gz", shift: 0)
        try blob(folder + "/nan-labels.nii.gz", shift: 0, nanEvery: 100)
        let outputs = ["--output-fixed", folder + "/f.nii.gz", "--output-moving", folder + "/m.nii.gz"]
        let refused = try MorphosegProcess.run(["register", "deform", "--image", folder + "/nan.nii.gz"] + outputs)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertEqual(refused.errors.split(separator: "\n").count, 1, refused.errors)
        XCTAssertTrue(refused.errors.contains("\(folder)/nan.nii.gz: 256 voxels are NaN or infinite (to replace them: --nan-as V"), refused.errors)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/m.nii.gz"))
        let replaced = try MorphosegProcess.run(
            ["register", "deform", "--image", folder + "/nan.nii.gz", "--labels", folder + "/labels.nii.gz", "--nan-as", "0",
             "--output-moving-labels", folder + "/ml.nii.gz"] + outputs)
        XCTAssertEqual(replaced.status, 0, replaced.errors)
        let fixed = try NIfTI.read(folder + "/f.nii.gz")
        XCTAssertTrue(fixed.data.allSatisfy(\.isFinite))
        XCTAssertEqual(fixed.data.filter { $0 == 0 }.count, fixed.data.count - (0..<1024).filter { i in
            let x = i % 32 - 16, y = i / 32 - 16
            return i % 4 != 0 && x * x + y * y < 64
        }.count, "the NaN voxels became 0, the others kept their value")
        let labels = try MorphosegProcess.run(
            ["register", "deform", "--image", folder + "/labels.nii.gz", "--labels", folder + "/nan-labels.nii.gz", "--nan-as", "0",
             "--output-moving-labels", folder + "/ml2.nii.gz"] + outputs.map { $0.replacingOccurrences(of: ".nii.gz", with: "-2.nii.gz") })
        XCTAssertNotEqual(labels.status, 0)
        XCTAssertTrue(labels.errors.contains("\(folder)/nan-labels.nii.gz: 11 voxels are NaN or infinite; a label or tissue map is refused, not replaced"),
                      labels.errors)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/ml2.nii.gz"))
    }

    /// `--output-warped` could equal `--moving` (the scan lost) or `--output-field` (one output
    /// lost). Both are refused up front in one line naming the options; nothing is written.
    func testOutputWarpedOnTheMovingImageOrOnTheFieldIsRefused() throws {
        let folder = try temporaryFolder("register-alias")
        try blob(folder + "/f.nii.gz", shift: 0)
        try blob(folder + "/m.nii.gz", shift: 2)
        let original = try Data(contentsOf: URL(fileURLWithPath: folder + "/m.nii.gz"))
        let base = ["register", "--optimize", "--levels", "1", "--iterations", "2", "--fixed", folder + "/f.nii.gz", "--moving", folder + "/m.nii.gz"]
        let cases: [(extra: [String], says: String)] = [
            (["--output-warped", folder + "/m.nii.gz"], "--output-warped is the input"),
            (["--output-warped", folder + "/w.nii.gz", "--output-field", folder + "/./w.nii.gz"], "--output-field"),
        ]
        for (extra, says) in cases {
            let run = try MorphosegProcess.run(base + extra)
            XCTAssertNotEqual(run.status, 0, "\(extra)")
            XCTAssertEqual(run.errors.split(separator: "\n").count, 1, "\(extra): \(run.errors)")
            XCTAssertTrue(run.errors.contains(says), "\(extra): \(run.errors)")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder + "/m.nii.gz")), original, "\(extra): the moving image was changed")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), ["f.nii.gz", "m.nii.gz"], "\(extra)")
        }
    }
}
