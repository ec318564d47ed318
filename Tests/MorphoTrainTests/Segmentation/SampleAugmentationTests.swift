import Foundation
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// The rotation/zoom of `SampleAugmentation` moves the image, its labels and its distance maps
/// together.
final class SampleAugmentationTests: XCTestCase {
    /// The source point (z, y, x voxel coordinates) every augmented voxel sampled: the image's
    /// three channels hold each voxel's own index, linear in position, so the image's trilinear
    /// path reproduces the sampled point exactly. The augmented label there must be the source
    /// label of the nearest voxel; the augmented distance maps must be the source maps sampled
    /// trilinearly at that same point, all scaled by one factor (the zoom, in [0.85, 1.15]); and,
    /// as a user sees it, each class's augmented map is ≤ 0 exactly where the augmented labels
    /// hold that class, wherever the map is more than one voxel diagonal from 0.
    func testRotationAndZoomKeepLabelsAndDistanceMapsAlignedWithTheImage() throws {
        let config = try AugmentationConfig(ConfigSection(yaml: "rotation: 25\nscaling: 0.15\nprobability: 1", file: "test"))
        let augmenter = SampleAugmentation(config, order: [0, 1, 2], dims: 3)
        let (d, h, w) = (22, 26, 24)
        let spacing = [1.5, 1.0, 1.2]
        // Background with a ball (1), an ellipsoid (2) and a block (3), all clear of the border.
        var labels = [Float](repeating: 0, count: d * h * w)
        var image = [Float](repeating: 0, count: 3 * d * h * w)
        for z in 0..<d { for y in 0..<h { for x in 0..<w {
            let v = (z * h + y) * w + x
            let (zz, yy, xx) = (Double(z) * spacing[0], Double(y) * spacing[1], Double(x) * spacing[2])
            let ball = (zz - 12) * (zz - 12) + (yy - 9) * (yy - 9) + (xx - 10) * (xx - 10)
            let ellipsoid = (zz - 17) * (zz - 17) / 16 + (yy - 17) * (yy - 17) / 25 + (xx - 17) * (xx - 17) / 9
            if ball < 36 { labels[v] = 1 }
            else if ellipsoid < 1 { labels[v] = 2 }
            else if (9...12).contains(z) && (15...20).contains(y) && (4...8).contains(x) { labels[v] = 3 }
            image[v] = Float(z); image[d * h * w + v] = Float(y); image[2 * d * h * w + v] = Float(x)
        } } }
        let n = d * h * w
        let labelArray = VoxelArray(data: labels, channels: 1, shape: [d, h, w], spacing: spacing)
        let distances = Subject.signedDistances(labelArray, classes: 4, sliceWise: false)
        let source = VoxelArray(data: image, channels: 3, shape: [d, h, w], spacing: spacing)
        /// Class `k`'s source map, trilinear at `q` (inside the array).
        func sourceDistance(_ k: Int, _ q: [Double]) -> Double {
            let base = q.enumerated().map { axis, c in min(Int(c.rounded(.down)), [d, h, w][axis] - 2) }
            let f = (0..<3).map { q[$0] - Double(base[$0]) }
            var sum = 0.0
            for corner in 0..<8 {
                let o = [corner >> 2 & 1, corner >> 1 & 1, corner & 1]
                var weight = 1.0
                for axis in 0..<3 { weight *= o[axis] == 1 ? f[axis] : 1 - f[axis] }
                sum += weight * Double(distances.data[k * n + ((base[0] + o[0]) * h + base[1] + o[1]) * w + base[2] + o[2]])
            }
            return sum
        }
        let diagonal = (spacing.map { $0 * $0 }.reduce(0, +)).squareRoot() * 1.15
        var rng = RandomGenerator(seed: 11)
        for trial in 0..<5 {
            let out = augmenter.sample(
                image: source, labels: labelArray, distances: distances, origin: [0, 0, 0], size: [d, h, w],
                imageFill: [0, 0, 0], augment: true, rng: &rng)
            XCTAssertTrue(out.transformed)
            let outLabels = try XCTUnwrap(out.labels)
            let outDistances = try XCTUnwrap(out.distances)
            var ambiguous = 0, mismatches = 0, moved = 0, signErrors = 0, signChecked = 0
            var ratios: [Double] = []
            for v in 0..<n {
                let q = (0..<3).map { Double(out.image.data[$0 * n + v]) }
                for k in 0..<4 {
                    let expected = sourceDistance(k, q), got = Double(outDistances.data[k * n + v])
                    if abs(expected) > 0.5 { ratios.append(got / expected) }
                    if abs(got) > diagonal {
                        signChecked += 1
                        if (got <= 0) != (outLabels.data[v] == Float(k)) { signErrors += 1 }
                    }
                }
                // Half-way between two voxels, rounding may go either way in floating point.
                if q.contains(where: { abs($0 - $0.rounded(.down) - 0.5) < 1e-3 }) { ambiguous += 1; continue }
                let (z, y, x) = (Int(q[0].rounded()), Int(q[1].rounded()), Int(q[2].rounded()))
                if (z * h + y) * w + x != v { moved += 1 }
                if outLabels.data[v] != labels[(z * h + y) * w + x] { mismatches += 1 }
            }
            XCTAssertEqual(mismatches, 0, "trial \(trial): labels not where the image sampled")
            XCTAssertLessThan(ambiguous, n / 100, "trial \(trial)")
            XCTAssertGreaterThan(moved, n / 2, "trial \(trial): the transform moved the image")
            // One zoom factor for every voxel and class: the maps were sampled where the image was.
            let zoom = ratios.reduce(0, +) / Double(ratios.count)
            XCTAssertTrue((0.85...1.15).contains(zoom), "trial \(trial): zoom \(zoom)")
            let spread = ratios.map { abs($0 - zoom) }.reduce(0, nanStrictMax)
            XCTAssertLessThan(spread, 1e-4, "trial \(trial): distance maps not sampled where the image was (ratios vary by \(spread))")
            XCTAssertGreaterThan(signChecked, n, "trial \(trial)")
            XCTAssertEqual(signErrors, 0, "trial \(trial): a class map's sign disagrees with the augmented labels")
        }
    }
}
