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
}
