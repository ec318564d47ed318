import Foundation
import MorphoIO
import MorphoKernels
import MorphoTensor
import XCTest
@testable import MorphoTrain

/// Where patches are drawn from and what they carry.
final class PatchSamplerTests: XCTestCase {
    /// A subject whose only foreground is a 3×3 square in a 64×64 slice.
    func smallForegroundSubject() -> Subject {
        var labels = [Float](repeating: 0, count: 64 * 64)
        for y in 30..<33 { for x in 40..<43 { labels[y * 64 + x] = 1 } }
        let image = VoxelArray(data: labels, channels: 1, shape: [1, 64, 64], spacing: [1, 1, 1])
        let pre = Preprocessor(
            normalization: try! RunConfig(yaml: "data: {phantom: {}}").data.normalization, targetSpacing: nil, dims: 2,
            sliceAxis: .z, multiple: 1, minimumSize: [1, 1, 1])
        return Subject(
            id: "square", prepared: pre.placeImage(image), labels: VoxelArray(data: labels, channels: 1, shape: [1, 64, 64], spacing: [1, 1, 1]),
            classes: 2, distances: true, sliceWise: true)
    }

    func testPatchSamplerHonoursTheForegroundFraction() throws {
        let subject = smallForegroundSubject()
        let aug = try RunConfig(yaml: "data: {phantom: {}}").data.augmentation
        func fractionWithForeground(_ f: Double) -> Double {
            let sampler = PatchSampler(size: [1, 16, 16], foregroundFraction: f, augmentation: aug, order: [0, 1, 2], dims: 2)
            var rng = RandomGenerator(seed: 11)
            var hits = 0
            let n = 2000
            for _ in 0..<n {
                let (_, labels, _) = sampler.sample(subject, rng: &rng)
                if labels.data.contains(where: { $0 > 0 }) { hits += 1 }
            }
            return Double(hits) / Double(n)
        }
        XCTAssertEqual(fractionWithForeground(1), 1)
        // Uniform origins: a 16×16 patch touches the square for 18×18 of the 49×49 origins (13.5 %).
        let uniform = fractionWithForeground(0)
        let expectedUniform: Double = 324.0 / 2401.0  // (18 · 18) / (49 · 49)
        XCTAssertEqual(uniform, expectedUniform, accuracy: 0.03)
        let half = fractionWithForeground(0.5)
        XCTAssertEqual(half, 0.5 + 0.5 * uniform, accuracy: 0.04)
    }

    func testPatchDistancesAreTheVolumeDistancesCroppedWithTheLabels() throws {
        let subject = smallForegroundSubject()
        let aug = try RunConfig(yaml: "data: {phantom: {}}").data.augmentation
        let sampler = PatchSampler(size: [1, 16, 16], foregroundFraction: 1, augmentation: aug, order: [0, 1, 2], dims: 2)
        var rng = RandomGenerator(seed: 5)
        let o = sampler.origin(in: subject, rng: &rng)
        var again = RandomGenerator(seed: 5)
        let (_, labels, distances) = sampler.sample(subject, rng: &again)
        let d = try XCTUnwrap(distances)
        XCTAssertEqual(d.channels, 2)
        // The same crop of the volume maps.
        let expected = subject.distances!.cropped(origin: o, size: [1, 16, 16], fill: [0, 0])
        XCTAssertEqual(d.data, expected.data)
        // Class-1 map: ≤ 0 on the label, > 0 off it.
        for i in 0..<256 {
            XCTAssertEqual(labels.data[i] == 1, d.data[256 + i] <= 0)
        }
    }
}
