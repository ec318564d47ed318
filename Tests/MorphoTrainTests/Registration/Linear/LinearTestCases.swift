import Foundation
import MorphoIO
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

/// Synthetic linear-registration cases: the MNI152 T1 from the shared data folder on a coarser
/// grid, its content moved by a known map.
enum LinearTestCases {
    /// The MNI152 2009a T1 resampled to `spacing` mm, or a skip where the shared data is absent.
    static func mni(spacing: Double) throws -> Volume {
        let repo = URL(fileURLWithPath: #filePath)
        let candidates = ["/work/shared/data"] + [6, 7].map { depth in
            var url = repo
            for _ in 0..<depth { url = url.deletingLastPathComponent() }
            return url.appendingPathComponent("shared/data").path
        }
        guard let root = candidates.first(where: { FileManager.default.fileExists(atPath: "\($0)/mni152") }) else {
            throw XCTSkip("shared data folder with mni152/ not found")
        }
        let t1 = try NIfTI.read("\(root)/mni152/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
        return t1.resampled(toSpacing: SIMD3(repeating: spacing), linear: true)
    }

    /// `image` whose content is moved by `truth` (fixed → moving world map) and resampled back
    /// onto `image`'s own grid: `moving(truth(x)) = image(x)`, as a second scan of the same head
    /// placed differently (content leaving the box is lost, as it would be).
    static func moved(_ image: Volume, by truth: LinearTransform) -> Volume {
        var replaced = image
        replaced.affine = truth.worldMap * image.affine
        return WorldResampling.resample(replaced, onto: image, interpolation: .linear).volume
    }

    /// The intensity-weighted centre of `image` (world mm), a natural rotation centre.
    static func centre(of image: Volume) -> SIMD3<Double> {
        var mass = 0.0, sum = SIMD3<Double>.zero
        for k in 0..<image.depth { for j in 0..<image.height { for i in 0..<image.width {
            let value = Double(max(0, image.data[(k * image.height + j) * image.width + i]))
            mass += value
            sum += value * image.affine.apply(SIMD3(Double(i), Double(j), Double(k)))
        } } }
        return sum / mass
    }

    /// A rigid map: rotation by (α, β, γ) degrees about `centre`, then translation `shift` mm.
    static func rigid(degrees: SIMD3<Double>, shift: SIMD3<Double>, centre: SIMD3<Double>) -> LinearTransform {
        var t = LinearTransform(kind: .rigid, dimension: 3, center: centre)
        let r = degrees * .pi / 180
        t.parameters = [r.x, r.y, r.z, shift.x, shift.y, shift.z]
        return t
    }

    /// The angle (degrees) of the rotation between two maps' matrices (polar rotation parts).
    static func rotationError(_ a: LinearTransform, _ b: LinearTransform) -> Double {
        var relative = LinearTransform(kind: .affine, dimension: 3)
        relative.parameters = (a.matrix * b.matrix.transposed).entries + [0, 0, 0]
        let r = AffineDecomposition(relative).rotationDegrees.map { $0 * .pi / 180 }
        let m = LinearTransform.rotation(r[0], r[1], r[2])
        return acos(max(-1, min(1, (m.r0.x + m.r1.y + m.r2.z - 1) / 2))) * 180 / .pi
    }

    /// The largest distance (mm) between two maps' images of the points `points`.
    static func mapError(_ a: LinearTransform, _ b: LinearTransform, at points: [SIMD3<Double>]) -> Double {
        points.map { p in let d = a.apply(p) - b.apply(p); return (d * d).sum().squareRoot() }.reduce(0, nanStrictMax)
    }

    /// The centre and six points 60–70 mm from it along the axes: where a head's content is.
    static func headPoints(around c: SIMD3<Double>) -> [SIMD3<Double>] {
        [c] + [SIMD3(60.0, 0, 0), SIMD3(-60.0, 0, 0), SIMD3(0, 70.0, 0), SIMD3(0, -70.0, 0), SIMD3(0, 0, 60.0), SIMD3(0, 0, -50.0)].map { c + $0 }
    }
}
