import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// `morphoseg apply` and `morphoseg transform` as a user runs them: images and displacement
/// fields with NaN or infinite values are refused with one line naming the file unless
/// `--nan-as V` says what they mean; label maps are refused whatever `--nan-as` says.
final class ApplyCommandTests: XCTestCase {
    /// 6 × 5 × 4 voxels, value `f(flat index)`.
    private func writeImage(_ path: String, _ f: (Int) -> Float) throws {
        try NIfTI.write(Volume(depth: 4, height: 5, width: 6, data: (0..<120).map(f)), to: path)
    }

    /// The one error line of a refused run.
    private func assertRefused(_ run: MorphosegProcess.Result, saying message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(run.status, 0, file: file, line: line)
        let lines = run.errors.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line: \(run.errors)", file: file, line: line)
        XCTAssertTrue(run.errors.contains(message), run.errors, file: file, line: line)
    }

    func testApplyRefusesAnImageWithNaNVoxelsUnlessNanAsIsGiven() throws {
        let folder = try temporaryFolder("apply-nan")
        try writeImage(folder + "/ref.nii.gz") { _ in 0 }
        try writeImage(folder + "/nan.nii.gz") { $0 % 7 == 0 ? .nan : ($0 % 11 == 0 ? .infinity : Float($0)) }
        let arguments = ["apply", "--reference", folder + "/ref.nii.gz", "--input", folder + "/nan.nii.gz", "--output", folder + "/out.nii.gz"]
        let refused = try MorphosegProcess.run(arguments)
        // 18 NaN (multiples of 7) and 9 infinite (multiples of 11 that are not of 7: 77 is both).
        assertRefused(refused, saying: "\(folder)/nan.nii.gz: 27 voxels are NaN or infinite (to replace them: --nan-as V")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/out.nii.gz"))
        // A negative value needs the = form (`--nan-as -5` reads -5 as an option).
        let replaced = try MorphosegProcess.run(arguments + ["--nan-as=-5"])
        XCTAssertEqual(replaced.status, 0, replaced.errors)
        // No transform, the same grid: the output is the input with every non-finite voxel −5.
        let out = try NIfTI.read(folder + "/out.nii.gz")
        let expected: [Float] = (0..<120).map { (i: Int) -> Float in i % 7 == 0 || i % 11 == 0 ? -5 : Float(i) }
        XCTAssertEqual(out.data, expected)
    }

    func testApplyRefusesALabelMapWithNaNVoxelsEvenWithNanAs() throws {
        let folder = try temporaryFolder("apply-nan-labels")
        try writeImage(folder + "/ref.nii.gz") { _ in 0 }
        try writeImage(folder + "/labels.nii.gz") { $0 == 3 ? .nan : Float($0 % 3) }
        for interpolation in ["label", "nearest"] {
            let run = try MorphosegProcess.run(
                ["apply", "--reference", folder + "/ref.nii.gz", "--input", folder + "/labels.nii.gz", "--output", folder + "/out.nii.gz",
                 "--interpolation", interpolation, "--nan-as", "0"])
            assertRefused(run, saying: "\(folder)/labels.nii.gz: 1 voxel is NaN or infinite; a label or tissue map is refused, not replaced")
            XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/out.nii.gz"))
        }
    }

    /// A 3-component field on the 6 × 5 × 4 grid, LPS mm, with NaN in two components.
    private func writeFieldWithNaN(_ path: String) throws {
        var data = [Float](repeating: 0.25, count: 3 * 120)
        data[5] = .nan
        data[120 + 17] = .nan
        try ITKDisplacementField(lps: Volume(channels: 3, depth: 4, height: 5, width: 6, data: data)).write(to: path)
    }

    func testApplyAndTransformRefuseAFieldWithNaNComponentsUnlessNanAsIsGiven() throws {
        let folder = try temporaryFolder("field-nan")
        try writeImage(folder + "/ref.nii.gz") { Float($0) }
        try writeFieldWithNaN(folder + "/u.nii.gz")
        let message = "\(folder)/u.nii.gz: 2 voxels are NaN or infinite (to replace them: --nan-as V"
        let commands: [(arguments: [String], output: String)] = [
            (["apply", "--reference", folder + "/ref.nii.gz", "--input", folder + "/ref.nii.gz", "-t", folder + "/u.nii.gz",
              "--output", folder + "/a.nii.gz"], folder + "/a.nii.gz"),
            (["transform", "compose", "--reference", folder + "/ref.nii.gz", "-t", folder + "/u.nii.gz", "--output", folder + "/c.nii.gz"],
             folder + "/c.nii.gz"),
            (["transform", "invert", "--field", folder + "/u.nii.gz", "--output", folder + "/i.nii.gz"], folder + "/i.nii.gz"),
        ]
        for (arguments, output) in commands {
            assertRefused(try MorphosegProcess.run(arguments), saying: message)
            XCTAssertFalse(FileManager.default.fileExists(atPath: output), "\(arguments[0]): no partial output")
            let replaced = try MorphosegProcess.run(arguments + ["--nan-as", "0"])
            XCTAssertEqual(replaced.status, 0, "\(arguments.prefix(2)): \(replaced.errors)")
            let written = try NIfTI.read(output)
            XCTAssertTrue(written.data.allSatisfy(\.isFinite), "\(arguments.prefix(2)): finite output")
        }
        // compose on the field's own grid: the components given 0 are 0, the others 0.25 mm.
        let composed = try ITKDisplacementField.read(folder + "/c.nii.gz")
        XCTAssertEqual(composed.volume.data[5], 0)
        XCTAssertEqual(composed.volume.data[120 + 17], 0)
        XCTAssertEqual(composed.volume.data[6], 0.25, accuracy: 1e-6)
    }
}
