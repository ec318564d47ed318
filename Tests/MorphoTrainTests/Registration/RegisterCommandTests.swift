import Foundation
import MorphoIO
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

/// `morphoseg register` from files, run as the built binary (next to the tests: `swift build
/// --product morphoseg` with the tests' flags, as `make test` does), then `morphoseg apply`
/// with what it wrote.
final class RegisterCommandTests: XCTestCase {
    var binary = ""
    var folder = ""

    override func setUpWithError() throws {
        binary = try MorphosegProcess.require()
        folder = try temporaryFolder("register-command")
        let fixed = try LinearTestCases.mni(spacing: 4)
        let c = LinearTestCases.centre(of: fixed)
        let moving = LinearTestCases.moved(fixed, by: LinearTestCases.rigid(degrees: SIMD3(-3, 2, 7), shift: SIMD3(5, 2, -3), centre: c))
        try NIfTI.write(fixed, to: folder + "/fixed.nii.gz")
        try NIfTI.write(moving, to: folder + "/moving.nii.gz")
        var mask = fixed
        mask.data = fixed.data.map { $0 > 0 ? 1 : 0 }
        try NIfTI.write(mask, to: folder + "/mask.nii.gz")
    }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile(), errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: errors, as: UTF8.self))
    }

    func testRegisterWritesAnAffineThatComposesWithTheFieldInApply() throws {
        let register = try run([
            "register", "--optimize", "--fixed", "fixed.nii.gz", "--moving", "moving.nii.gz", "--output-warped", "warped.nii.gz",
            "--output-field", "field.nii.gz", "--output-affine", "affine.mat", "--fixed-mask", "mask.nii.gz", "--levels", "2",
            "--iterations", "20,10", "--json", "--threads", "2",
        ])
        XCTAssertEqual(register.status, 0, register.errors)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(register.output.utf8)) as? [String: Any])
        let stages = try XCTUnwrap(summary["stages"] as? [[String: Any]])
        XCTAssertEqual(stages.compactMap { $0["stage"] as? String }, ["rigid", "affine", "deformable"])
        XCTAssertEqual(stages.compactMap { $0["metric"] as? String }, ["mi", "mi", "lcc"])
        let rigid = try XCTUnwrap(stages[0]["transform"] as? [String: Any])
        let degrees = try XCTUnwrap(rigid["rotation_degrees"] as? [Double])
        XCTAssertEqual(degrees.count, 3)
        XCTAssertEqual(degrees[2], 7, accuracy: 1, "the z rotation of the moved content")
        let outputs = try XCTUnwrap(summary["outputs"] as? [[String: Any]])
        XCTAssertTrue(outputs.contains { $0["kind"] as? String == "affine" && $0["path"] as? String == "affine.mat" })

        let apply = try run([
            "apply", "--reference", "fixed.nii.gz", "--input", "moving.nii.gz", "--output", "applied.nii.gz",
            "-t", "field.nii.gz", "-t", "affine.mat",
        ])
        XCTAssertEqual(apply.status, 0, apply.errors)
        let applied = try NIfTI.read(folder + "/applied.nii.gz"), warped = try NIfTI.read(folder + "/warped.nii.gz")
        var worst: Float = 0
        for (a, b) in zip(applied.data, warped.data) { worst = nanStrictMax(worst, abs(a - b)) }
        XCTAssertLessThan(worst, 1e-3 * warped.data.max()!)
    }

    func testTextSummaryListsEachStageAndBadCombinationsFailInOneLine() throws {
        let text = try run([
            "register", "--optimize", "--fixed", "fixed.nii.gz", "--moving", "moving.nii.gz", "--output-warped", "w.nii.gz",
            "--transform", "rigid", "--linear-similarity", "mse", "--initialize", "moments", "--output-affine", "r.txt",
        ])
        XCTAssertEqual(text.status, 0, text.errors)
        XCTAssertTrue(text.output.contains("rigid stage (mse loss)"), text.output)
        XCTAssertTrue(text.output.contains("rotation (°, about x, y, z)"), text.output)
        XCTAssertTrue(try String(contentsOfFile: folder + "/r.txt", encoding: .utf8).contains("AffineTransform_double_3_3"))

        let bad = try run([
            "register", "--optimize", "--fixed", "fixed.nii.gz", "--moving", "moving.nii.gz", "--output-warped", "w2.nii.gz",
            "--transform", "deformable", "--output-affine", "a.mat",
        ])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.errors.contains("--output-affine"), bad.errors)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/w2.nii.gz"), "no partial output")
    }
}
