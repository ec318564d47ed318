import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// `AxisOrder`, the one reordering of per-axis values between NIfTI order `(x, y, z)` and the
/// `[D, H, W]` layout `Volume` documents.
final class VolumeTests: XCTestCase {
    func testAxisOrderRoundTripsBothWays() {
        let xyz = [5, 4, 3]
        XCTAssertEqual(AxisOrder.xyz(fromDHW: AxisOrder.dhw(fromXYZ: xyz)), xyz)
        XCTAssertEqual(AxisOrder.dhw(fromXYZ: AxisOrder.xyz(fromDHW: xyz)), xyz)
        let xy = [0.5, 0.75]
        XCTAssertEqual(AxisOrder.xyz(fromDHW: AxisOrder.dhw(fromXYZ: xy)), xy)
        let spacing = SIMD3<Double>(0.5, 0.75, 2)
        XCTAssertEqual(AxisOrder.xyz(fromDHW: AxisOrder.dhw(fromXYZ: spacing)), [spacing.x, spacing.y, spacing.z])
    }

    /// A file's header `dim`/`pixdim` (NIfTI order) reordered by `AxisOrder` are the volume's
    /// `spatialShape` and spacing in `[D, H, W]`, and voxel `(z, y, x)` sits at the flat index the
    /// `[D, H, W]` shape implies.
    func testAxisOrderTakesTheNIfTIHeaderToTheVolumeLayout() throws {
        let folder = try temporaryFolder("volume")
        let (d, h, w) = (3, 4, 5)
        let data = (0..<(d * h * w)).map(Float.init)
        let original = Volume(depth: d, height: h, width: w, data: data, spacing: SIMD3(0.5, 0.75, 2))
        let path = folder + "/axes.nii.gz"
        try NIfTI.write(original, to: path)
        let header = try NIfTI.readHeader(path)
        let read = try NIfTI.read(path)

        XCTAssertEqual(AxisOrder.dhw(fromXYZ: Array(header.dim.prefix(3))), read.spatialShape)
        XCTAssertEqual(AxisOrder.dhw(fromXYZ: Array(header.pixdim.prefix(3))), AxisOrder.dhw(fromXYZ: read.spacing))
        XCTAssertEqual(AxisOrder.xyz(fromDHW: read.spatialShape), Array(header.dim.prefix(3)))
        let shape = read.spatialShape
        for (z, y, x) in [(0, 0, 1), (0, 1, 0), (1, 0, 0), (2, 3, 4)] {
            XCTAssertEqual(read[0, z, y, x], data[(z * shape[1] + y) * shape[2] + x])
        }
    }

    func testSpatialSizeOfAConfigSizeReversesAndGives2DSizesOneSlice() {
        XCTAssertEqual(AxisOrder.spatialSize(fromXYZ: [64, 48, 32], dims: 3), [32, 48, 64])
        XCTAssertEqual(AxisOrder.spatialSize(fromXYZ: [64, 48], dims: 2), [1, 48, 64])
    }
}
