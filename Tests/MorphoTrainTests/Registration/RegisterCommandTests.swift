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

    /// `volume` stored with its x axis reversed: the same world content (voxel i' = nx − 1 − i,
    /// the affine's first column negated and its origin moved to the old last column), so only the
    /// file's layout and geometry differ.
    func flippedAlongX(_ volume: Volume) -> Volume {
        var m = volume.affine.matrix
        let nx = Double(volume.width - 1)
        for row in 0..<3 {
            m[row][3] += m[row][0] * nx
            m[row][0] = -m[row][0]
        }
        var data = volume.data
        let w = volume.width
        for line in 0..<(volume.data.count / w) {
            for x in 0..<w { data[line * w + x] = volume.data[line * w + w - 1 - x] }
        }
        return Volume(depth: volume.depth, height: volume.height, width: w, data: data, spacing: volume.spacing, affine: Affine(matrix: m))
    }

    /// `register --optimize` from files as a user gives them: the moving scan on another grid
    /// (x stored reversed, so every voxel index differs from the fixed one) and in other
    /// intensity units (× 250 + 40). Normalisation: the run registers the same as with the plain
    /// moving image (the warped image is that run's, in the moving scan's units). Geometry: the
    /// outputs lie on the fixed grid with its affine, and the labels follow. Validation: a mask on
    /// another grid than its image is refused in one line naming both files, with no output.
    func testOptimizeFromFilesOnAnotherGridAndIntensityScaleRegistersLikeThePlainPair() throws {
        let fixed = try NIfTI.read(folder + "/fixed.nii.gz"), moving = try NIfTI.read(folder + "/moving.nii.gz")
        let threshold = 0.3 * moving.data.max()!
        var fixedLabels = fixed, movingLabels = moving
        fixedLabels.data = fixed.data.map { $0 > threshold ? 1 : 0 }
        movingLabels.data = moving.data.map { $0 > threshold ? 1 : 0 }
        try NIfTI.write(fixedLabels, to: folder + "/fixed-labels.nii.gz")
        try NIfTI.write(movingLabels, to: folder + "/moving-labels.nii.gz")
        var rescaled = moving
        rescaled.data = moving.data.map { $0 * 250 + 40 }
        try NIfTI.write(flippedAlongX(rescaled), to: folder + "/other.nii.gz")
        try NIfTI.write(flippedAlongX(movingLabels), to: folder + "/other-labels.nii.gz")
        func register(_ moving: String, _ labels: String, _ tag: String) throws -> [String: Any] {
            let run = try run([
                "register", "--optimize", "--fixed", "fixed.nii.gz", "--moving", moving, "--fixed-labels", "fixed-labels.nii.gz",
                "--moving-labels", labels, "--output-warped", "warped-\(tag).nii.gz", "--output-labels", "labels-\(tag).nii.gz", "--output-affine", "affine-\(tag).txt",
                "--levels", "2", "--iterations", "20,10", "--json", "--threads", "2",
            ])
            XCTAssertEqual(run.status, 0, "\(tag): \(run.errors)")
            return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])
        }
        let plain = try register("moving.nii.gz", "moving-labels.nii.gz", "plain")
        let other = try register("other.nii.gz", "other-labels.nii.gz", "other")
        let warpedPlain = try NIfTI.read(folder + "/warped-plain.nii.gz"), warpedOther = try NIfTI.read(folder + "/warped-other.nii.gz")
        for output in [warpedOther, try NIfTI.read(folder + "/labels-other.nii.gz")] {
            XCTAssertEqual(output.spatialShape, fixed.spatialShape)
            XCTAssertTrue(output.affine.isApproximatelyEqual(to: fixed.affine, tolerance: 1e-6), "on the fixed grid: \(output.affine)")
        }
        // The same linear map (ITK parameters: 9 matrix entries, then the translation in mm).
        func parameters(_ tag: String) throws -> [Double] {
            let text = try String(contentsOfFile: folder + "/affine-\(tag).txt", encoding: .utf8)
            let line = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("Parameters:") })
            return line.split(separator: " ").dropFirst().compactMap { Double($0) }
        }
        let (linearPlain, linearOther) = (try parameters("plain"), try parameters("other"))
        XCTAssertEqual(linearPlain.count, 12)
        for (k, (a, b)) in zip(linearPlain, linearOther).enumerated() {
            XCTAssertEqual(a, b, accuracy: k < 9 ? 0.01 : 0.2, "affine parameter \(k)")
        }
        // The same registration in the moving scan's units, warped(other) ≈ 250·warped(plain) + 40
        // (not exactly: the pyramids of the reversed grid round differently; measured on the MNI
        // at 4 mm: correlation 0.99988, mean |Δ| 0.14 % of the range), and as close to the fixed
        // image (correlation 0.9969 for both, from 0.915 before registration).
        func correlation(_ a: [Float], _ b: [Float]) -> Double {
            let (ma, mb) = (a.map(Double.init).reduce(0, +) / Double(a.count), b.map(Double.init).reduce(0, +) / Double(b.count))
            var (ab, aa, bb) = (0.0, 0.0, 0.0)
            for (x, y) in zip(a, b) {
                ab += (Double(x) - ma) * (Double(y) - mb)
                aa += (Double(x) - ma) * (Double(x) - ma)
                bb += (Double(y) - mb) * (Double(y) - mb)
            }
            return ab / (aa * bb).squareRoot()
        }
        let rescaledPlain = warpedPlain.data.map { 250 * $0 + 40 }
        XCTAssertGreaterThan(correlation(warpedOther.data, rescaledPlain), 0.999)
        var meanDifference = 0.0
        for (a, b) in zip(warpedOther.data, rescaledPlain) { meanDifference += Double(abs(a - b)) / Double(rescaledPlain.count) }
        XCTAssertLessThan(meanDifference, 0.005 * Double(rescaledPlain.max()!), "mean |warped(other) − (250·warped(plain) + 40)|")
        let (before, afterPlain, afterOther) = (
            correlation(moving.data, fixed.data), correlation(warpedPlain.data, fixed.data), correlation(warpedOther.data, fixed.data))
        XCTAssertEqual(afterOther, afterPlain, accuracy: 1e-3)
        XCTAssertGreaterThan(afterOther, before + 0.05, "correlation with the fixed image \(before) → \(afterOther)")
        // The labels moved with the image: the two runs' warped labels differ in under 1 % of the label voxels.
        let labelsPlain = try NIfTI.read(folder + "/labels-plain.nii.gz"), labelsOther = try NIfTI.read(folder + "/labels-other.nii.gz")
        let differing = zip(labelsPlain.data, labelsOther.data).filter { $0 != $1 }.count
        XCTAssertLessThan(differing, labelsPlain.data.filter { $0 > 0 }.count / 100)
        let dicePlain = try XCTUnwrap((plain["quality"] as? [String: Any])?["mean_dice_after"] as? Double)
        let quality = try XCTUnwrap(other["quality"] as? [String: Any])
        let diceBefore = try XCTUnwrap(quality["mean_dice_before"] as? Double)
        let diceAfter = try XCTUnwrap(quality["mean_dice_after"] as? Double)
        XCTAssertEqual(diceAfter, dicePlain, accuracy: 0.01)
        XCTAssertGreaterThan(diceAfter, diceBefore + 0.02, "Dice \(diceBefore) → \(diceAfter)")
        XCTAssertGreaterThan(diceAfter, 0.9)

        // A moving mask written on the fixed grid is not on the moving image's grid.
        let refused = try run([
            "register", "--optimize", "--fixed", "fixed.nii.gz", "--moving", "other.nii.gz", "--moving-mask", "mask.nii.gz",
            "--output-warped", "refused.nii.gz", "--levels", "1", "--iterations", "2",
        ])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertEqual(refused.errors.split(separator: "\n").count, 1, refused.errors)
        XCTAssertTrue(refused.errors.contains("mask.nii.gz and other.nii.gz are not on the same voxel grid"), refused.errors)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/refused.nii.gz"))
    }
}
