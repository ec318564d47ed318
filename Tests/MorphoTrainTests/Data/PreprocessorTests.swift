import Foundation
import MorphoIO
import MorphoKernels
import MorphoTensor
import XCTest
@testable import MorphoTrain

/// Preparing an image for the network and restoring it to the file grid.
final class PreprocessorTests: XCTestCase {
    func testPreparedImageIsRestoredToTheFileGrid() throws {
        var rng = RandomGenerator(seed: 8)
        let raw = VoxelArray(data: (0..<(5 * 6 * 7)).map { _ in Float(rng.index(3)) }, channels: 1, shape: [5, 6, 7], spacing: [2, 1, 1])
        let norm = try RunConfig(yaml: "data: {phantom: {}}").data.normalization
        for axis in SpatialAxis.allCases {
            let pre = Preprocessor(normalization: norm, targetSpacing: nil, dims: 2, sliceAxis: axis, multiple: 4, minimumSize: [1, 1, 1])
            let labels = pre.prepareLabels(raw)
            let prepared = pre.placeImage(raw)
            XCTAssertTrue(labels.shape[1] % 4 == 0 && labels.shape[2] % 4 == 0)
            XCTAssertEqual(prepared.restored(labels, linear: false), raw, "slice axis \(axis)")
        }
        // Resampling to 1 mm and back with nearest neighbour keeps labels on a 2:1 grid.
        let pre = Preprocessor(normalization: norm, targetSpacing: [1, 1, 1], dims: 3, sliceAxis: .z, multiple: 1, minimumSize: [1, 1, 1])
        let prepared = pre.placeImage(raw)
        XCTAssertEqual(prepared.array.shape, [10, 6, 7])
        XCTAssertEqual(prepared.restored(pre.prepareLabels(raw), linear: false).data, raw.data)
    }
}
