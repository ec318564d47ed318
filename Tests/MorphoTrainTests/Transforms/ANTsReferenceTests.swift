import Foundation
import MorphoIO
import MorphoTrain
import XCTest
import MorphoTestSupport

/// `morphoseg apply` against ANTs itself: the SyN warp and affine ANTs wrote, applied to the
/// moving image and labels, must give what `ants.apply_transforms` gave (files and how they
/// were made: `Tests/MorphoIOTests/Data/transforms/README.md`).
final class ANTsReferenceTests: XCTestCase {
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("MorphoIOTests/Data/transforms").path

    var transforms: [String] { [folder + "/ants_1Warp.nii.gz", folder + "/ants_0GenericAffine.mat"] }

    /// Pearson correlation over the voxels where `mask` is true.
    func correlation(_ a: [Float], _ b: [Float], _ mask: [Bool]) -> Double {
        var n = 0.0, sa = 0.0, sb = 0.0, saa = 0.0, sbb = 0.0, sab = 0.0
        for i in a.indices where mask[i] {
            let x = Double(a[i]), y = Double(b[i])
            n += 1; sa += x; sb += y; saa += x * x; sbb += y * y; sab += x * y
        }
        return (sab - sa * sb / n) / ((saa - sa * sa / n) * (sbb - sb * sb / n)).squareRoot()
    }

    func testTheWarpedImageIsANTsOwn() throws {
        let fixed = try NIfTI.read(folder + "/fixed.nii.gz")
        let moving = try NIfTI.read(folder + "/moving.nii.gz")
        let theirs = try NIfTI.read(folder + "/ants_warped.nii.gz")
        let ours = TransformApplication.apply(try TransformChain.load(transforms), to: moving, reference: fixed, interpolation: .linear)
        let top = fixed.data.max()!
        let head = fixed.data.map { $0 > 0.05 * top }
        XCTAssertGreaterThan(correlation(ours.data, theirs.data, head), 0.99999)
        var largest: Float = 0
        for (a, b) in zip(ours.data, theirs.data) { largest = nanStrictMax(largest, abs(a - b)) }
        XCTAssertLessThan(largest, 1e-3 * theirs.data.max()!)
        // The same through one composed field.
        let composed = TransformChain([.field(try TransformChain.load(transforms).displacementField(on: fixed))])
        let once = TransformApplication.apply(composed, to: moving, reference: fixed, interpolation: .linear)
        XCTAssertGreaterThan(correlation(once.data, theirs.data, head), 0.99999)
    }

    func testWarpedLabelsAreANTsGenericLabelOnes() throws {
        let fixed = try NIfTI.read(folder + "/fixed.nii.gz")
        let labels = try NIfTI.read(folder + "/moving_labels.nii.gz")
        let theirs = try NIfTI.read(folder + "/ants_warped_labels.nii.gz")
        let ours = TransformApplication.apply(try TransformChain.load(transforms), to: labels, reference: fixed, interpolation: .label)
        XCTAssertEqual(ours.header.datatype, labels.header.datatype)
        let agree = zip(ours.data, theirs.data).filter { $0 == $1 }.count
        XCTAssertGreaterThanOrEqual(Double(agree) / Double(ours.data.count), 0.999)
        XCTAssertEqual(Set(ours.data), Set(labels.data))
    }
}
