import Foundation
import MorphoIO
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// Test-time mirroring: every mirrored pass is mirrored back onto the original voxels, and the
/// average is exactly mirror-equivariant.
final class TestTimeMirroringTests: XCTestCase {
    func testMirroringCallsEveryAxisSubsetOnce() {
        let image = VoxelArray(data: (0..<24).map(Float.init), channels: 1, shape: [2, 3, 4], spacing: [1, 1, 1])
        var calls = 0
        _ = TestTimeMirroring.probabilities(image, axes: TestTimeMirroring.axes(dims: 3)) { calls += 1; return $0 }
        XCTAssertEqual(calls, 8)
        calls = 0
        _ = TestTimeMirroring.probabilities(image, axes: TestTimeMirroring.axes(dims: 2)) { calls += 1; return $0 }
        XCTAssertEqual(calls, 4)
    }

    /// A "network" that returns its input: each pass sees a mirrored image and its result is
    /// mirrored back, so every pass gives the original and so does the mean, exactly.
    func testFlipBackRestoresEveryPassExactly() {
        var rng = SeedStream.generator(seed: 3, 1)
        let image = VoxelArray(
            data: (0..<(2 * 3 * 4 * 5)).map { _ in Float.random(in: -1...1, using: &rng) }, channels: 2, shape: [3, 4, 5],
            spacing: [1, 1, 1])
        var seen: [[Float]] = []
        let mean = TestTimeMirroring.probabilities(image, axes: [0, 1, 2]) { seen.append($0.data); return $0 }
        XCTAssertEqual(Set(seen.map { $0.map(\.bitPattern) }).count, 8, "each pass sees a differently mirrored image")
        for i in image.data.indices { XCTAssertEqual(mean.data[i], image.data[i], accuracy: 1e-6) }
    }

    /// With mirroring, a randomly initialised 3D U-Net's sliding-window prediction of a mirrored
    /// image is the mirrored prediction (to rounding); without it, it is not.
    func testMirroredPredictionIsMirrorEquivariant() throws {
        let config = try UntrainedCheckpoints.config(dims: 3, seed: 7)
        let network = makeUNet(config)
        network.setTraining(false)
        var rng = SeedStream.generator(seed: 5, 2)
        let image = VoxelArray(
            data: (0..<(8 * 12 * 16)).map { _ in Float.random(in: -1...1, using: &rng) }, channels: 1, shape: [8, 12, 16],
            spacing: [1, 1, 1])
        let window = SlidingWindow(config, shape: image.shape)
        func predict(_ a: VoxelArray) -> VoxelArray { window.probabilities(a, fill: [0]) { network($0) } }
        func tta(_ a: VoxelArray) -> VoxelArray { TestTimeMirroring.probabilities(a, axes: [0, 1, 2], predict: predict) }
        func worst(_ a: VoxelArray, _ b: VoxelArray) -> Float {
            zip(a.data, b.data).reduce(Float(0)) { nanStrictMax($0, abs($1.0 - $1.1)) }
        }
        for axis in 0..<3 {
            var mirrored = image
            mirrored.flip(axis: axis)
            var plain = predict(mirrored)
            plain.flip(axis: axis)
            XCTAssertGreaterThan(worst(plain, predict(image)), 1e-3, "a random network is not mirror-equivariant (axis \(axis))")
            var averaged = tta(mirrored)
            averaged.flip(axis: axis)
            XCTAssertLessThan(worst(averaged, tta(image)), 1e-5, "axis \(axis)")
        }
    }
}
