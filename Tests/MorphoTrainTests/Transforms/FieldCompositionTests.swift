import Foundation
import MorphoIO
import MorphoTrain
import XCTest
import MorphoTestSupport

/// Composition into one field, inversion, and the Jacobian map.
final class FieldCompositionTests: XCTestCase {
    /// A smooth field of at most ~1.5 mm on `grid`.
    func smoothField(on grid: Volume) -> ITKDisplacementField {
        var field = ITKDisplacementField.zero(on: grid)
        let n = grid.spatialCount
        for v in 0..<n {
            let p = TransformFixtures.world(grid, v)
            field.volume.data[v] = Float(1.2 * sin(p.y / 4) * cos(p.z / 5))
            field.volume.data[n + v] = Float(0.9 * cos(p.x / 5))
            field.volume.data[2 * n + v] = Float(0.6 * sin((p.x + p.y) / 6))
        }
        return field
    }

    func testApplyingTheComposedFieldEqualsApplyingTheChainAndApplyingStepByStep() {
        let reference = TransformFixtures.grid(14, 12, 10, spacing: SIMD3(1.1, 1, 1.2), angle: 0.25, origin: SIMD3(2, 1, 0))
        let wide = TransformFixtures.grid(40, 40, 40, origin: SIMD3(-12, -12, -12))
        let input = TransformFixtures.image(on: wide) { 0.5 * $0.x - $0.y + 2 * $0.z }
        let a = ITKAffineTransform(dimension: 3, matrix: [1, 0.05, 0, -0.03, 1, 0, 0, 0, 0.95], translation: [1, -2, 0.5], center: [3, 3, 3])
        let b = smoothField(on: TransformFixtures.grid(24, 24, 24, origin: SIMD3(-6, -6, -6)))
        let chain = TransformChain([.affine(a), .field(b)])
        let direct = TransformApplication.apply(chain, to: input, reference: reference, interpolation: .linear)
        let composed = TransformApplication.apply(
            TransformChain([.field(chain.displacementField(on: reference))]), to: input, reference: reference, interpolation: .linear)
        for (x, y) in zip(direct.data, composed.data) { XCTAssertEqual(x, y, accuracy: 1e-4) }
        // Step by step: the image is moved by the last listed transform first (onto the wide
        // grid), then by the first.
        let moved = TransformApplication.apply(TransformChain([.field(b)]), to: input, reference: wide, interpolation: .linear)
        let stepwise = TransformApplication.apply(TransformChain([.affine(a)]), to: moved, reference: reference, interpolation: .linear)
        // Interpolating the intermediate image is exact only where the field is linear between
        // voxel centres; the difference is the interpolation of a smooth field (≪ the image's range).
        var largest: Float = 0
        for (x, y) in zip(direct.data, stepwise.data) { largest = nanStrictMax(largest, abs(x - y)) }
        XCTAssertLessThan(largest, 0.1)
    }

    func testInvertingTwiceGivesTheFieldBack() {
        let grid = TransformFixtures.grid(16, 16, 16, spacing: SIMD3(1, 1.2, 0.9), angle: 0.3)
        // The smooth field tapered to zero at the grid's faces, as a registration field is
        // outside the head: no point is moved out of the grid.
        var u = smoothField(on: grid)
        let n = grid.spatialCount
        for v in 0..<n {
            let (i, j, k) = (v % 16, (v / 16) % 16, v / 256)
            let taper = sin(Double.pi * Double(i) / 15) * sin(Double.pi * Double(j) / 15) * sin(Double.pi * Double(k) / 15)
            for c in 0..<3 { u.volume.data[c * n + v] *= Float(taper) }
        }
        let once = FieldInversion.invert(u, maxIterations: 100, tolerance: 1e-4)
        XCTAssertGreaterThan(once.iterations, 1)
        XCTAssertLessThan(once.maxError, 1e-4)
        let twice = FieldInversion.invert(once.inverse, maxIterations: 100, tolerance: 1e-4)
        var largest: Float = 0
        for (a, b) in zip(twice.inverse.volume.data, u.volume.data) { largest = nanStrictMax(largest, abs(a - b)) }
        // The inverse is sampled between voxel centres, so twice inverted differs from u by the
        // linear interpolation error of a smooth field: far below a voxel.
        XCTAssertLessThan(largest, 0.05)
    }

    func testJacobianOfAnAffineFieldIsTheMatrixDeterminant() throws {
        let grid = TransformFixtures.grid(10, 9, 8, spacing: SIMD3(1.5, 1, 2), angle: 0.6)
        let a = ITKAffineTransform(dimension: 3, matrix: [1.1, 0.2, 0, 0, 0.9, 0.1, 0, 0, 1.2], translation: [1, 2, 3], center: [5, 5, 5])
        let field = TransformChain([.affine(a)]).displacementField(on: grid)
        let det = try FieldJacobian.determinant(of: field)
        let expected = 1.1 * 0.9 * 1.2
        XCTAssertTrue(det.sameGrid(as: grid))
        for value in det.data { XCTAssertEqual(Double(value), expected, accuracy: 1e-4) }
    }
}
