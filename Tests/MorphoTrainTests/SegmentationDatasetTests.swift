import MorphoKernels
import XCTest
@testable import MorphoTrain

/// `Subject.signedDistances`: the per-class maps a subject keeps are `signedDistance` of each
/// class mask, per volume for 3D networks and per slice (in-plane spacing) for 2D ones.
final class SegmentationDatasetTests: XCTestCase {
    private let (d, h, w) = (3, 7, 6)
    private let classes = 3

    private func labels() -> VoxelArray {
        // Class regions of different shapes per slice, and class 2 absent from slice 0.
        let data = (0..<(d * h * w)).map { i -> Float in
            let z = i / (h * w), y = (i / w) % h, x = i % w
            if z > 0 && (x - 3) * (x - 3) + (y - 3) * (y - 3) <= z + 1 { return 2 }
            return y + x < 5 + z ? 1 : 0
        }
        return VoxelArray(data: data, channels: 1, shape: [d, h, w], spacing: [2, 0.75, 1.25])
    }

    func testVolumeMapsAreSignedDistanceOfEachClassMask() {
        let l = labels(), n = d * h * w
        let maps = Subject.signedDistances(l, classes: classes, sliceWise: false)
        XCTAssertEqual(maps.channels, classes)
        XCTAssertEqual(maps.shape, l.shape)
        for k in 0..<classes {
            let reference = signedDistance(mask: l.data.map { Int($0) == k }, shape: l.shape, spacing: l.spacing)
            XCTAssertEqual(Array(maps.data[(k * n)..<((k + 1) * n)]), reference, "class \(k)")
        }
    }

    func testSliceWiseMapsAreSignedDistanceOfEachSliceMaskWithInPlaneSpacing() {
        let l = labels(), n = d * h * w, slice = h * w
        let maps = Subject.signedDistances(l, classes: classes, sliceWise: true)
        for k in 0..<classes {
            for z in 0..<d {
                let mask = l.data[(z * slice)..<((z + 1) * slice)].map { Int($0) == k }
                let reference = signedDistance(mask: mask, shape: [h, w], spacing: [l.spacing[1], l.spacing[2]])
                let start = k * n + z * slice
                XCTAssertEqual(Array(maps.data[start..<(start + slice)]), reference, "class \(k) slice \(z)")
            }
        }
    }
}
