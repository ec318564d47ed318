import MorphoKernels
import XCTest

/// `classSignedDistances`, the one routine behind the boundary loss's maps and a segmentation
/// subject's maps, gives exactly what each of those computed class by class before.
final class ClassSignedDistancesTests: XCTestCase {
    private func randomLabels(_ count: Int, classes: Int, seed: UInt64) -> [Int32] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Int32.random(in: 0..<Int32(classes), using: &rng) }
    }

    /// The boundary loss's old loop: per item and class, `signedDistance` of `labels == c`, maps
    /// laid out `[N, K, spatial...]`.
    func testItemByItemMapsEqualSignedDistanceOfEachClassMask() {
        let shape = [5, 6, 7], spacing = [2.0, 1, 0.5], classes = 3, items = 2
        let s = shape.reduce(1, *)
        let labels = randomLabels(items * s, classes: classes, seed: 11)
        var ours = [Float](repeating: .nan, count: items * classes * s)
        labels.withUnsafeBufferPointer { y in
            ours.withUnsafeMutableBufferPointer { out in
                for item in 0..<items {
                    classSignedDistances(
                        labels: UnsafeBufferPointer(rebasing: y[(item * s)..<((item + 1) * s)]), classes: classes,
                        shape: shape, spacing: spacing, classStride: s, into: out.baseAddress! + item * classes * s)
                }
            }
        }
        for item in 0..<items {
            for c in 0..<classes {
                let mask = labels[(item * s)..<((item + 1) * s)].map { $0 == Int32(c) }
                let reference = signedDistance(mask: mask, shape: shape, spacing: spacing)
                XCTAssertEqual(Array(ours[((item * classes + c) * s)..<((item * classes + c + 1) * s)]), reference, "item \(item) class \(c)")
            }
        }
    }

    /// The subject's old slice-wise loop: per class and slice `z`, `signedDistance` of the slice's
    /// mask with in-plane spacing, written into `[K, D, H, W]`.
    func testSliceBySliceMapsFillAClassMajorVolume() {
        let (d, h, w) = (4, 6, 5), classes = 3, inPlane = [0.75, 1.25]
        let n = d * h * w, slice = h * w
        let labels = randomLabels(n, classes: classes, seed: 12)
        var ours = [Float](repeating: .nan, count: classes * n)
        labels.withUnsafeBufferPointer { y in
            ours.withUnsafeMutableBufferPointer { out in
                for z in 0..<d {
                    classSignedDistances(
                        labels: UnsafeBufferPointer(rebasing: y[(z * slice)..<((z + 1) * slice)]), classes: classes,
                        shape: [h, w], spacing: inPlane, classStride: n, into: out.baseAddress! + z * slice)
                }
            }
        }
        for c in 0..<classes {
            for z in 0..<d {
                let mask = labels[(z * slice)..<((z + 1) * slice)].map { $0 == Int32(c) }
                let reference = signedDistance(mask: mask, shape: [h, w], spacing: inPlane)
                let start = c * n + z * slice
                XCTAssertEqual(Array(ours[start..<(start + slice)]), reference, "class \(c) slice \(z)")
            }
        }
    }

    /// A class that is absent gives an all-zero map, and a label outside `0..<classes` belongs to
    /// no class (it is background for every map).
    func testAbsentClassIsZeroAndOutOfRangeLabelsBelongToNoClass() {
        let shape = [3, 4], s = 12
        var labels = [Int32](repeating: 0, count: s)
        labels[5] = 7
        var ours = [Float](repeating: .nan, count: 3 * s)
        labels.withUnsafeBufferPointer { y in
            ours.withUnsafeMutableBufferPointer { classSignedDistances(labels: y, classes: 3, shape: shape, classStride: s, into: $0.baseAddress!) }
        }
        XCTAssertEqual(Array(ours[0..<s]), signedDistance(mask: labels.map { $0 == 0 }, shape: shape))
        XCTAssertEqual(Array(ours[s..<(3 * s)]), [Float](repeating: 0, count: 2 * s))
    }
}
