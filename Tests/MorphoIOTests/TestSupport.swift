import CNIfTI
import Foundation
import MorphoIO
import XCTest

/// Folder of the copied test data (`Tests/MorphoIOTests/Data`).
let testDataFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Data").path

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func readBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// gzip-compresses `bytes` into `path` with zlib (independent of the reader's code paths).
func writeGzip(_ bytes: [UInt8], to path: String) throws {
    guard let file = gzopen(path, "wb") else { throw CocoaError(.fileWriteUnknown) }
    let n = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
    gzclose(file)
    XCTAssertEqual(Int(n), bytes.count)
}

/// Builds NIfTI-1 files byte by byte from the published header layout (nifti1.h offsets), so
/// the reader is checked against an encoding it did not produce: layout, byte order, datatypes,
/// scaling, and deliberately broken headers.
struct NIfTI1Fixture {
    var dim: [Int]                      // NIfTI order, dim[0] is dim.count
    var datatype: Int16 = 16
    var bitpix: Int16 = 32
    /// pixdim[1...7] (voxel sizes, then time and others).
    var pixdim: [Float] = [1, 1, 1, 1, 1, 1, 1]
    /// pixdim[0], the qform's qfac: −1 flips the third axis of the quaternion's rotation.
    var qfac: Float = 1
    var sclSlope: Float = 0
    var sclInter: Float = 0
    var bigEndian = false
    var magic: [UInt8] = Array("n+1".utf8) + [0]
    var qformCode: Int16 = 0
    var sformCode: Int16 = 1
    var srow: [[Float]] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]
    /// quatern_b, quatern_c, quatern_d (the qform's rotation; a = √(1 − b² − c² − d²)).
    var quatern: [Float] = [0, 0, 0]
    /// qoffset_x, qoffset_y, qoffset_z (mm).
    var qoffset: [Float] = [0, 0, 0]
    var sizeofHdr: Int32 = 348
    /// Voxel bytes as stored (already in the file's byte order).
    var payload: [UInt8] = []

    /// The 348-byte header with `vox_offset` as given.
    func header(voxOffset: Float) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 348)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
            let value = bigEndian ? v.bigEndian : v.littleEndian
            withUnsafeBytes(of: value) { for (i, b) in $0.enumerated() { h[at + i] = b } }
        }
        func putF(_ v: Float, _ at: Int) { put(v.bitPattern, at) }
        put(sizeofHdr, 0)
        put(Int16(dim.count), 40)
        for (i, d) in dim.enumerated() { put(Int16(truncatingIfNeeded: d), 42 + 2 * i) }
        for i in dim.count..<7 { put(Int16(1), 42 + 2 * i) }
        put(datatype, 70)
        put(bitpix, 72)
        putF(qfac, 76)
        for (i, p) in pixdim.prefix(7).enumerated() { putF(p, 80 + 4 * i) }
        putF(voxOffset, 108)
        putF(sclSlope, 112)
        putF(sclInter, 116)
        h[123] = 2  // mm
        put(qformCode, 252)
        put(sformCode, 254)
        for (i, v) in quatern.enumerated() { putF(v, 256 + 4 * i) }
        for (i, v) in qoffset.enumerated() { putF(v, 268 + 4 * i) }
        for (r, row) in srow.enumerated() { for (c, v) in row.enumerated() { putF(v, 280 + 16 * r + 4 * c) } }
        for (i, b) in magic.prefix(4).enumerated() { h[344 + i] = b }
        return h
    }

    /// A single-file `.nii`: header, 4 extension bytes (none), voxels at offset 352.
    var singleFile: [UInt8] { header(voxOffset: 352) + [0, 0, 0, 0] + payload }

    /// Writes a `.hdr`/`.img` pair (magic `ni1`, voxels at offset 0 of the `.img`).
    func writePair(stem: String) throws {
        var pair = self
        pair.magic = Array("ni1".utf8) + [0]
        try writeBytes(pair.header(voxOffset: 0), to: stem + ".hdr")
        try writeBytes(payload, to: stem + ".img")
    }

    /// Voxel bytes for values of type `T`, in this fixture's byte order.
    func encode<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: bigEndian ? v.bigEndian : v.littleEndian) { Array($0) } }
    }
}

/// Tolerance checks for JSON numbers.
func assertClose(_ a: Double, _ b: Double, absolute: Double = 0, relative: Double = 0, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    let tolerance = max(absolute, relative * max(abs(a), abs(b)))
    XCTAssertLessThanOrEqual(abs(a - b), tolerance, "\(what): \(a) vs \(b)", file: file, line: line)
}

extension XCTestCase {
    /// Reads `path` with `NIfTI.read` and `VolumeInfo.read`, expecting an error `expected`
    /// accepts whose description is one line starting with the file; a header-only read must not
    /// crash either (it may succeed: some defects are in the data).
    func assertNIfTIRejects(
        _ path: String, _ expected: (NIfTIError) -> Bool, file: StaticString = #filePath, line: UInt = #line
    ) {
        for attempt in ["read", "info", "header"] {
            do {
                switch attempt {
                case "read": _ = try NIfTI.read(path)
                case "info": _ = try VolumeInfo.read(path)
                default:
                    _ = try NIfTI.readHeader(path)
                    continue
                }
                XCTFail("\(attempt) accepted \(path)", file: file, line: line)
            } catch let error as NIfTIError {
                XCTAssertTrue(expected(error), "\(attempt): unexpected error \(error)", file: file, line: line)
                XCTAssertTrue(error.description.hasPrefix(path + ": "), error.description, file: file, line: line)
                XCTAssertFalse(error.description.contains("\n"), error.description, file: file, line: line)
            } catch {
                XCTFail("\(attempt): not a NIfTIError: \(error)", file: file, line: line)
            }
        }
    }
}
