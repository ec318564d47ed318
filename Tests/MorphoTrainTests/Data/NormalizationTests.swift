import Foundation
import MorphoIO
import MorphoKernels
import MorphoTensor
import XCTest
@testable import MorphoTrain

/// Intensity normalisation.
final class NormalizationTests: XCTestCase {
    func testNormalizationZScoreAndPercentile() throws {
        var a = VoxelArray(data: [1, 2, 3, 4, 0, 0, 0, 100], channels: 2, shape: [1, 1, 4], spacing: [1, 1, 1])
        let z = try RunConfig(yaml: "data: {phantom: {}}").data.normalization
        z.apply(to: &a)
        let std = (1.25 as Double).squareRoot()
        XCTAssertEqual(a.data[0], Float((1 - 2.5) / std), accuracy: 1e-6)
        XCTAssertEqual(a.data[7], Float(75 / (1875 as Double).squareRoot()), accuracy: 1e-5)
        var b = VoxelArray(data: (0...100).map { Float($0) }, channels: 1, shape: [1, 1, 101], spacing: [1, 1, 1])
        let p = try RunConfig(yaml: "data:\n  phantom: {}\n  normalization: {kind: percentile, lower: 10, upper: 90}\n").data.normalization
        p.apply(to: &b)
        XCTAssertEqual(b.data[0], 0)
        XCTAssertEqual(b.data[50], 0.5, accuracy: 1e-6)
        XCTAssertEqual(b.data[100], 1)
    }

    func testPercentilesBySelectionEqualThoseOfTheSortedValues() {
        var generator = SystemRandomNumberGenerator()
        for (count, distinct) in [(1, 1), (2, 2), (17, 3), (100, 100), (1000, 7), (4097, 100_000), (20_000, 2)] {
            let values = (0..<count).map { _ in Float(Int.random(in: 0..<distinct, using: &generator)) * 0.25 - 3 }
            let sorted = values.sorted()
            for p in [0, 0.5, 10, 50, 73.3, 99.5, 100] {
                var scratch = values
                XCTAssertEqual(NormalizationConfig.percentile(selecting: &scratch, p), NormalizationConfig.percentile(sorted, p),
                               "\(count) values, \(distinct) distinct, percentile \(p)")
                XCTAssertEqual(scratch.sorted(), sorted, "selection only reorders")
            }
        }
    }
}
