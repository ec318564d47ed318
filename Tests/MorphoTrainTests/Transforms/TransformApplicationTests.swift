import Foundation
import MorphoIO
import MorphoTrain
import XCTest

/// `morphoseg apply`'s library: transforms read as ANTs reads them, applied in its order, on
/// images whose resampled values are known in closed form.
final class TransformApplicationTests: XCTestCase {
    let shift = ITKAffineTransform(dimension: 3, matrix: [1, 0, 0, 0, 1, 0, 0, 0, 1], translation: [2, -1, 0.5])

    func testAnLPSTranslationSamplesTheInputAtTheTranslatedPoint() throws {
        let reference = TransformFixtures.grid(12, 10, 8, spacing: SIMD3(1.2, 0.9, 1.5), angle: 0.3)
        // Value = RAS x + 3·RAS y − 2·RAS z of the voxel centre.
        let f: (SIMD3<Double>) -> Double = { $0.x + 3 * $0.y - 2 * $0.z }
        let input = TransformFixtures.image(on: TransformFixtures.grid(30, 30, 24, origin: SIMD3(-8, -8, -8)), f)
        let out = TransformApplication.apply(TransformChain([.affine(shift)]), to: input, reference: reference, interpolation: .linear)
        XCTAssertTrue(out.sameGrid(as: reference))
        for v in 0..<reference.spatialCount {
            // The moving point is x_LPS + t; in RAS that is x_RAS + (−2, 1, 0.5).
            let moving = TransformFixtures.world(reference, v) + SIMD3(-2, 1, 0.5)
            XCTAssertEqual(Double(out.data[v]), f(moving), accuracy: 1e-3)
        }
    }

    func testADisplacementFieldOfTheSameTranslationGivesTheSameImage() throws {
        let reference = TransformFixtures.grid(12, 10, 8, spacing: SIMD3(1.2, 0.9, 1.5), angle: 0.3)
        let input = TransformFixtures.image(on: TransformFixtures.grid(30, 30, 24, origin: SIMD3(-8, -8, -8))) {
            $0.x * $0.x / 10 + $0.y - $0.z
        }
        // The field lives on its own oblique grid that covers the reference.
        let fieldGrid = TransformFixtures.grid(34, 34, 24, spacing: SIMD3(1, 1, 1), angle: -0.2, origin: SIMD3(-10, -10, -6))
        var field = ITKDisplacementField.zero(on: fieldGrid)
        let n = fieldGrid.spatialCount
        for v in 0..<n {
            for c in 0..<3 { field.volume.data[c * n + v] = Float(shift.translation[c]) }
        }
        let folder = try TransformFixtures.folder(self)
        try field.write(to: folder + "/warp.nii.gz")
        try ITKTransformFile.write(shift, to: folder + "/shift.mat")
        let viaField = TransformApplication.apply(
            try TransformChain.load([folder + "/warp.nii.gz"]), to: input, reference: reference, interpolation: .linear)
        let viaAffine = TransformApplication.apply(
            try TransformChain.load([folder + "/shift.mat"]), to: input, reference: reference, interpolation: .linear)
        for (a, b) in zip(viaField.data, viaAffine.data) { XCTAssertEqual(a, b, accuracy: 1e-4) }
    }

    func testTheFirstListedTransformActsFirstOnTheReferencePoint() throws {
        let grid = TransformFixtures.grid(40, 6, 6)
        // Value = LPS x = −RAS x.
        let input = TransformFixtures.image(on: TransformFixtures.grid(80, 6, 6, origin: SIMD3(-79, 0, 0))) { -$0.x }
        let scale = ITKAffineTransform(dimension: 3, matrix: [2, 0, 0, 0, 1, 0, 0, 0, 1], translation: [0, 0, 0])
        let move = ITKAffineTransform(dimension: 3, matrix: [1, 0, 0, 0, 1, 0, 0, 0, 1], translation: [5, 0, 0])
        let out = TransformApplication.apply(TransformChain([.affine(scale), .affine(move)]), to: input, reference: grid, interpolation: .linear)
        for v in stride(from: 0, to: grid.spatialCount, by: 7) {
            let x = -TransformFixtures.world(grid, v).x
            let expected = 2 * x + 5
            if expected > 79 || expected < 0 { continue }
            XCTAssertEqual(Double(out.data[v]), expected, accuracy: 1e-4)
        }
    }

    func testInvertedAffinesUndoTheirTransform() throws {
        let folder = try TransformFixtures.folder(self)
        try ITKTransformFile.write(shift, to: folder + "/shift.txt")
        let grid = TransformFixtures.grid(10, 10, 10, angle: 0.4)
        let input = TransformFixtures.image(on: TransformFixtures.grid(30, 30, 30, origin: SIMD3(-10, -10, -10))) { 2 * $0.x - $0.y + $0.z }
        for chain in [[folder + "/shift.txt", "[\(folder)/shift.txt,1]"], ["[\(folder)/shift.txt, 1]", folder + "/shift.txt"]] {
            let out = TransformApplication.apply(try TransformChain.load(chain), to: input, reference: grid, interpolation: .linear)
            for v in 0..<grid.spatialCount {
                let p = TransformFixtures.world(grid, v)
                XCTAssertEqual(Double(out.data[v]), 2 * p.x - p.y + p.z, accuracy: 1e-3)
            }
        }
        let viaFlag = TransformApplication.apply(
            try TransformChain.load([folder + "/shift.txt"], inverted: [0]), to: input, reference: grid, interpolation: .linear)
        let viaBracket = TransformApplication.apply(
            try TransformChain.load(["[\(folder)/shift.txt,1]"]), to: input, reference: grid, interpolation: .linear)
        XCTAssertEqual(viaFlag.data, viaBracket.data)
        XCTAssertThrowsError(try TransformChain.load(["[\(folder)/shift.txt,2]"]))
    }

    func testPointsOutsideTheInputGetTheDefaultValue() {
        let grid = TransformFixtures.grid(6, 6, 6)
        let input = TransformFixtures.image(on: grid) { _ in 1 }
        let far = ITKAffineTransform(dimension: 3, matrix: [1, 0, 0, 0, 1, 0, 0, 0, 1], translation: [100, 0, 0])
        let out = TransformApplication.apply(TransformChain([.affine(far)]), to: input, reference: grid, interpolation: .linear, defaultValue: -7)
        XCTAssertEqual(Set(out.data), [-7])
    }

    func testLabelInterpolationVotesWithLinearWeightsAndKeepsTheIntegerType() throws {
        // A 2×2×1 corner: label 1 at (0, 0), label 2 at its three neighbours; the sample point is
        // voxel (0.4, 0.4), whose nearest voxel holds 1 but whose linear weights give label 2
        // 0.24 + 0.24 + 0.16 = 0.64 against 0.36.
        var input = TransformFixtures.grid(2, 2, 1)
        input.data = [1, 2, 2, 2]
        input.header.datatype = .int16
        let reference = TransformFixtures.grid(1, 1, 1)
        // Reference voxel 0 at RAS 0 must sample RAS (0.4, 0.4, 0): LPS shift (−0.4, −0.4, 0).
        let t = ITKAffineTransform(dimension: 3, matrix: [1, 0, 0, 0, 1, 0, 0, 0, 1], translation: [-0.4, -0.4, 0])
        let chain = TransformChain([.affine(t)])
        let label = TransformApplication.apply(chain, to: input, reference: reference, interpolation: .label)
        let nearest = TransformApplication.apply(chain, to: input, reference: reference, interpolation: .nearest)
        let linear = TransformApplication.apply(chain, to: input, reference: reference, interpolation: .linear)
        XCTAssertEqual(label.data, [2])
        XCTAssertEqual(nearest.data, [1])
        XCTAssertEqual(linear.data[0], 1.64, accuracy: 1e-5)
        XCTAssertEqual(label.header.datatype, .int16)
        XCTAssertEqual(nearest.header.datatype, .int16)
        XCTAssertEqual(linear.header.datatype, .float32)
    }

    func testLabelMapsStayLabelsUnderASmoothWarp() {
        let grid = TransformFixtures.grid(16, 16, 16)
        let labels = TransformFixtures.image(on: grid) { p in
            let r = ((p - SIMD3(8, 8, 8)) * (p - SIMD3(8, 8, 8))).sum().squareRoot()
            return r < 3 ? 5 : r < 6 ? 2 : 0
        }
        var field = ITKDisplacementField.zero(on: grid)
        let n = grid.spatialCount
        for v in 0..<n {
            let p = TransformFixtures.world(grid, v)
            field.volume.data[v] = Float(0.7 * sin(p.y / 3))
            field.volume.data[n + v] = Float(0.5 * cos(p.z / 4))
        }
        let out = TransformApplication.apply(TransformChain([.field(field)]), to: labels, reference: grid, interpolation: .label)
        XCTAssertTrue(Set(out.data).isSubset(of: [0, 2, 5]))
        XCTAssertEqual(Set(out.data), [0, 2, 5])
    }

    func testMultiChannelImagesAreResampledPerChannel() {
        let grid = TransformFixtures.grid(8, 8, 8, angle: 0.2)
        let source = TransformFixtures.grid(20, 20, 20, origin: SIMD3(-6, -6, -6))
        let a = TransformFixtures.image(on: source) { $0.x }
        let b = TransformFixtures.image(on: source) { 3 * $0.z - $0.y }
        let both = Volume(channels: 2, depth: 20, height: 20, width: 20, data: a.data + b.data, affine: source.affine)
        let chain = TransformChain([.affine(shift)])
        let out = TransformApplication.apply(chain, to: both, reference: grid, interpolation: .linear)
        XCTAssertEqual(out.channels, 2)
        let first = TransformApplication.apply(chain, to: a, reference: grid, interpolation: .linear)
        let second = TransformApplication.apply(chain, to: b, reference: grid, interpolation: .linear)
        XCTAssertEqual(out.data, first.data + second.data)
    }

    func testTwoDimensionalImagesTakeTwoDimensionalTransforms() throws {
        let grid = TransformFixtures.grid(12, 9, 1, spacing: SIMD3(0.8, 1.1, 1), angle: 0.5)
        let input = TransformFixtures.image(on: TransformFixtures.grid(80, 80, 1, origin: SIMD3(-40, -40, 0))) { 2 * $0.x + $0.y }
        // A 90° in-plane rotation about the LPS point (1, 2), then a shift of (0.5, −1).
        let rotation = ITKAffineTransform(dimension: 2, matrix: [0, -1, 1, 0], translation: [0.5, -1], center: [1, 2])
        let out = TransformApplication.apply(TransformChain([.affine(rotation)]), to: input, reference: grid, interpolation: .linear)
        for v in 0..<grid.spatialCount {
            let lps = TransformFixtures.flip(TransformFixtures.world(grid, v))
            // y = A (x − c) + c + t with A (a, b) = (−b, a).
            let dx = lps.x - 1, dy = lps.y - 2
            let moving = TransformFixtures.flip(SIMD3(-dy + 1 + 0.5, dx + 2 - 1, 0))
            XCTAssertEqual(Double(out.data[v]), 2 * moving.x + moving.y, accuracy: 1e-3)
        }
    }
}
