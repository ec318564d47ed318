import XCTest
import MorphoIO
import MorphoTensor
@testable import MorphoTrain
import MorphoTestSupport

final class DisplacementFieldVolumeTests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = try temporaryFolder("reg-field")
    }

    /// A flow `[1, 3, 2, 3, 4]` whose channel c holds `(c + 1) · 10 + voxel index / 100`, so each
    /// value says which channel and voxel it came from.
    func taggedFlow() -> Tensor {
        Tensor(shape: [1, 3, 2, 3, 4]) { p in
            for c in 0..<3 { for v in 0..<24 { p[c * 24 + v] = Float(c + 1) * 10 + Float(v) / 100 } }
        }
    }

    func testFieldChannelsMapToNIfTIAxesInReverseOrder() {
        let grid = Volume(depth: 2, height: 3, width: 4, data: [Float](repeating: 0, count: 24))
        let field = DisplacementFieldVolume.volume(fromFlow: taggedFlow(), on: grid)
        XCTAssertEqual(field.channels, 3)
        // NIfTI component 0 displaces x = tensor W = flow channel 2, component 2 displaces z = channel 0.
        for v in 0..<24 {
            XCTAssertEqual(field.data[0 * 24 + v], 30 + Float(v) / 100, accuracy: 1e-5)
            XCTAssertEqual(field.data[1 * 24 + v], 20 + Float(v) / 100, accuracy: 1e-5)
            XCTAssertEqual(field.data[2 * 24 + v], 10 + Float(v) / 100, accuracy: 1e-5)
        }
    }

    func testFieldFileRoundTripKeepsChannelsAndWritesAVectorIntentOfShapeXYZ13() throws {
        let grid = Volume(depth: 2, height: 3, width: 4, data: [Float](repeating: 0, count: 24),
                          spacing: SIMD3(1.5, 2, 2.5))
        let flow = taggedFlow()
        let path = folder + "/field.nii.gz"
        try NIfTI.writeDisplacementField(DisplacementFieldVolume.volume(fromFlow: flow, on: grid), to: path, like: grid)
        let header = try NIfTI.readHeader(path)
        XCTAssertEqual(header.dim, [4, 3, 2, 1, 3])
        XCTAssertEqual(header.intentCode, 1007)
        let back = try DisplacementFieldVolume.flow(from: NIfTI.read(path))
        XCTAssertEqual(back.shape, flow.shape)
        XCTAssertEqual(back.scalars, flow.scalars)
    }

    func testFieldInMillimetresAppliesTheAffineLinearPart() throws {
        // Axis-swapping, scaled affine: x_world = 2·j, y_world = −3·i, z_world = 4·k.
        let affine = Affine(matrix: [[0, 2, 0, 10], [-3, 0, 0, 5], [0, 0, 4, -7], [0, 0, 0, 1]])
        let grid = Volume(depth: 2, height: 3, width: 4, data: [Float](repeating: 0, count: 24), affine: affine)
        // One displacement everywhere: 1 voxel along z (channel 0), 2 along y, 3 along x.
        let flow = Tensor(shape: [1, 3, 2, 3, 4]) { p in
            for v in 0..<24 { p[v] = 1; p[24 + v] = 2; p[48 + v] = 3 }
        }
        let mm = DisplacementFieldVolume.volume(fromFlow: flow, on: grid, units: .mm)
        // Voxel displacement (i, j, k) = (3, 2, 1) → world (2·2, −3·3, 4·1).
        XCTAssertEqual(mm.data[0], 4)
        XCTAssertEqual(mm.data[24], -9)
        XCTAssertEqual(mm.data[48], 4)
        let back = try DisplacementFieldVolume.flow(from: mm, units: .mm)
        for (a, b) in zip(back.scalars, flow.scalars) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testTwoDimensionalFieldSwapsItsTwoChannels() throws {
        let grid = Volume(depth: 1, height: 2, width: 3, data: [Float](repeating: 0, count: 6))
        let flow = Tensor(shape: [1, 2, 2, 3], data: [1, 1, 1, 1, 1, 1, 7, 7, 7, 7, 7, 7])
        let field = DisplacementFieldVolume.volume(fromFlow: flow, on: grid)
        XCTAssertEqual(Array(field.data.prefix(6)), [Float](repeating: 7, count: 6), "component x is channel W")
        XCTAssertEqual(try DisplacementFieldVolume.flow(from: field).scalars, flow.scalars)
    }

    func testReadingAThreeChannelImageOfTheWrongRankAsAFieldFailsNamingTheFile() {
        let notAField = Volume(channels: 2, depth: 2, height: 2, width: 2, data: [Float](repeating: 0, count: 16))
        XCTAssertThrowsError(try DisplacementFieldVolume.flow(from: notAField, path: "odd.nii")) { error in
            XCTAssertTrue("\(error)".hasPrefix("odd.nii:"), "\(error)")
        }
    }
}
