import MorphoIO
import XCTest
@testable import MorphoTrain

final class ContentHashTests: XCTestCase {
    func hash(_ v: Volume, _ text: String = "") -> String {
        var h = ContentHash()
        h.add(text)
        h.add(v)
        return h.hex
    }

    func testEqualInputsHashEquallyAndAnyVoxelGridOrTextChangeDiffers() {
        let v = Volume(depth: 2, height: 3, width: 4, data: (0..<24).map(Float.init))
        XCTAssertEqual(hash(v), hash(v))
        XCTAssertEqual(hash(v).count, 16)
        var voxel = v
        voxel.data[23] += 1e-3
        var moved = v
        moved.affine.matrix[0][3] = 0.5
        XCTAssertEqual(Set([hash(v), hash(voxel), hash(moved), hash(v, "settings")]).count, 4)
        // The FNV-1a 64 offset basis and prime: "a" hashes to FNV's published test vector.
        var a = ContentHash()
        "a".utf8.withContiguousStorageIfAvailable { a.add(bytes: UnsafeRawBufferPointer($0)) }
        XCTAssertEqual(a.hex, "af63dc4c8601ec8c")
    }
}
