import XCTest
import MorphoIO
import MorphoTensor
@testable import MorphoTrain
import MorphoTestSupport

/// Known rotations, scalings and shifts in world coordinates, composed with a smooth field.
final class SyntheticMisalignmentTests: XCTestCase {
    /// The value of channel `c` of `field` `[1, 3, d, h, w]` at (z, y, x).
    func value(_ field: Tensor, _ c: Int, _ z: Int, _ y: Int, _ x: Int) -> Float {
        let (d, h, w) = (field.shape[2], field.shape[3], field.shape[4])
        return field.scalars[((c * d + z) * h + y) * w + x]
    }

    func testShiftInMillimetresBecomesVoxelsOfAnAnisotropicGrid() {
        // Spacing x 2, y 1, z 3 mm: a shift of (4, −2, 6) mm is (2, −2, 2) voxels everywhere.
        let grid = Volume(depth: 8, height: 10, width: 12, data: [Float](repeating: 0, count: 960), spacing: SIMD3(2, 1, 3),
                          affine: Affine.diagonal([2, 1, 3]))
        let total = SyntheticMisalignment(shift: SIMD3(4, -2, 6)).totalField(after: .zeros([1, 3, 8, 10, 12]), on: grid)
        var worst: Float = 0
        for z in 0..<8 { for y in 0..<10 { for x in 0..<12 {
            worst = nanStrictMax(worst, abs(value(total, 2, z, y, x) - 2))
            worst = nanStrictMax(worst, abs(value(total, 1, z, y, x) + 2))
            worst = nanStrictMax(worst, abs(value(total, 0, z, y, x) - 2))
        } } }
        XCTAssertLessThan(worst, 1e-5)
    }

    func testRotationTurnsAboutTheCentreAfterTheSmoothField() {
        // 90° about z on a 5×9×9 grid: the centre voxel (x 4, y 4, z 2) stays, (x 5, y 4) reads (x 4, y 5).
        let grid = Volume(depth: 5, height: 9, width: 9, data: [Float](repeating: 0, count: 405))
        let m = SyntheticMisalignment(rotationDegrees: SIMD3(0, 0, 90))
        let total = m.totalField(after: .zeros([1, 3, 5, 9, 9]), on: grid)
        XCTAssertEqual(value(total, 2, 2, 4, 4), 0, accuracy: 1e-5)
        XCTAssertEqual(value(total, 1, 2, 4, 4), 0, accuracy: 1e-5)
        XCTAssertEqual(value(total, 2, 2, 4, 5), -1, accuracy: 1e-5)
        XCTAssertEqual(value(total, 1, 2, 4, 5), 1, accuracy: 1e-5)
        XCTAssertEqual(value(total, 0, 2, 4, 5), 0, accuracy: 1e-5)
        // The smooth field applies first: a constant x displacement of 1 voxel takes (x 4, y 4) to
        // (x 5, y 4), which the rotation sends to (x 4, y 5).
        var shifted = [Float](repeating: 0, count: 3 * 405)
        for v in 0..<405 { shifted[2 * 405 + v] = 1 }
        let composed = m.totalField(after: Tensor(shape: [1, 3, 5, 9, 9], data: shifted), on: grid)
        XCTAssertEqual(value(composed, 2, 2, 4, 4), 0, accuracy: 1e-5)
        XCTAssertEqual(value(composed, 1, 2, 4, 4), 1, accuracy: 1e-5)
    }

    func testRandomMisalignmentStaysWithinItsBoundsAndInPlaneIn2D() {
        for seed in UInt64(1)...20 {
            let m = SyntheticMisalignment.random(maxRotationDegrees: 10, maxScale: 0.06, maxShift: 10, seed: seed)
            for axis in 0..<3 {
                XCTAssertLessThanOrEqual(abs(m.rotationDegrees[axis]), 10)
                XCTAssertLessThanOrEqual(abs(m.scale[axis] - 1), 0.06)
                XCTAssertLessThanOrEqual(abs(m.shift[axis]), 10)
            }
            XCTAssertEqual(m, SyntheticMisalignment.random(maxRotationDegrees: 10, maxScale: 0.06, maxShift: 10, seed: seed))
            let flat = SyntheticMisalignment.random(maxRotationDegrees: 10, maxScale: 0.06, maxShift: 10, dims: 2, seed: seed)
            XCTAssertEqual([flat.rotationDegrees.x, flat.rotationDegrees.y, flat.scale.z, flat.shift.z], [0, 0, 1, 0])
        }
    }

    func testMisalignedPairKeepsTheSeedsSmoothFieldAndMovesLabelsByTheTotalMap() throws {
        let p = PhantomConfig(dims: 3, size: [20, 18, 16], count: 1, classes: 3, noise: 0, bias: 0, spacing: [2, 2, 2], seed: 2)
        let (image, labels) = Phantom.make(p, index: 0)
        let field = SmoothRandomField(smoothing: 7, maxDisplacement: 2)
        let plain = try SyntheticPair.deforming(image, labels: labels, field: field, seed: 3)
        let identity = try SyntheticPair.deforming(image, labels: labels, field: field, seed: 3, misalignment: SyntheticMisalignment())
        var worst: Float = 0
        for (a, b) in zip(plain.field.scalars, identity.field.scalars) { worst = nanStrictMax(worst, abs(a - b)) }
        XCTAssertLessThan(worst, 1e-4)
        // No smooth field, a shift of exactly 2 voxels (4 mm) along x: labels move by 2 voxels.
        let shifted = try SyntheticPair.deforming(
            image, labels: labels, field: SmoothRandomField(smoothing: 7, maxDisplacement: 0), seed: 3,
            misalignment: SyntheticMisalignment(shift: SIMD3(4, 0, 0)))
        let (d, h, w) = (image.depth, image.height, image.width)
        var mismatches = 0
        for z in 0..<d { for y in 0..<h { for x in 0..<(w - 2) {
            let v = (z * h + y) * w + x
            if shifted.movingLabels!.data[v] != labels.data[v + 2] { mismatches += 1 }
        } } }
        XCTAssertEqual(mismatches, 0)
        XCTAssertEqual(shifted.moving.data, warp(image.imageTensor, shifted.field).scalars)
    }
}
