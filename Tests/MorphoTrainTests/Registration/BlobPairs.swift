import XCTest
import MorphoIO
import MorphoTensor
@testable import MorphoTrain

/// Test cases that register synthetic blob images.
protocol BlobPairs {}

extension BlobPairs {
    /// A 3D image of two nested blobs `[1, 1, d, h, w]` and its labels (1 outer, 2 inner), centred
    /// at `centre` (voxels, (z, y, x)).
    func blobs(_ d: Int, _ h: Int, _ w: Int, centre: SIMD3<Double>) -> (image: Tensor, labels: Tensor) {
        var image = [Float](repeating: 0, count: d * h * w), labels = image
        for z in 0..<d { for y in 0..<h { for x in 0..<w {
            let p = SIMD3(Double(z), Double(y), Double(x)) - centre
            let r1 = ((p / SIMD3(6, 9, 8)) * (p / SIMD3(6, 9, 8))).sum()
            let r2 = (((p - SIMD3(0, 2, -2)) / SIMD3(3, 4, 3)) * ((p - SIMD3(0, 2, -2)) / SIMD3(3, 4, 3))).sum()
            let i = (z * h + y) * w + x
            // Smooth edges so the similarity has gradients beyond the boundary voxels.
            image[i] = Float(0.6 / (1 + exp(8 * (r1 - 1))) + 0.4 / (1 + exp(8 * (r2 - 1))))
            labels[i] = r2 < 1 ? 2 : r1 < 1 ? 1 : 0
        } } }
        return (Tensor(shape: [1, 1, d, h, w], data: image), Tensor(shape: [1, 1, d, h, w], data: labels))
    }
}
