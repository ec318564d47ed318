import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// Each kind of broken input is a thrown `NIfTIError` whose description is one line naming the
/// file and the defect, and nothing is allocated beyond what the file can hold.
final class NIfTIBadInputTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws { folder = try temporaryFolder("morphoio") }

    private func valid(dim: [Int] = [4, 4, 4]) -> NIfTI1Fixture {
        var fixture = NIfTI1Fixture(dim: dim, datatype: 2, bitpix: 8)
        fixture.payload = [UInt8](repeating: 7, count: dim.reduce(1, *))
        return fixture
    }

    func testMissingFileIsRejected() {
        assertNIfTIRejects("\(folder)/absent.nii") { if case .fileNotFound = $0 { return true }; return false }
    }

    func testEmptyFileIsRejected() throws {
        try writeBytes([], to: "\(folder)/empty.nii")
        assertNIfTIRejects("\(folder)/empty.nii") { if case .emptyFile = $0 { return true }; return false }
    }

    func testTextFileIsRejected() throws {
        try writeBytes(Array("subject,age\nsub-01,34\n".utf8) + [UInt8](repeating: 0x20, count: 400), to: "\(folder)/notes.nii")
        assertNIfTIRejects("\(folder)/notes.nii") { if case .notNIfTI(_, _, true) = $0 { return true }; return false }
    }

    func testTruncatedHeaderIsRejected() throws {
        try writeBytes(Array(valid().singleFile.prefix(200)), to: "\(folder)/short.nii")
        assertNIfTIRejects("\(folder)/short.nii") { if case .truncatedHeader(_, 200) = $0 { return true }; return false }
    }

    func testBadMagicIsRejected() throws {
        var fixture = valid()
        fixture.magic = Array("xyz".utf8) + [0]
        try writeBytes(fixture.singleFile, to: "\(folder)/magic.nii")
        assertNIfTIRejects("\(folder)/magic.nii") { if case .badMagic(_, "xyz") = $0 { return true }; return false }
    }

    func testUnknownAndUnsupportedDatatypesAreRejected() throws {
        for (code, bitpix) in [(Int16(999), Int16(8)), (32, 64), (128, 24)] {   // garbage, complex64, RGB24
            var fixture = valid()
            fixture.datatype = code
            fixture.bitpix = bitpix
            fixture.payload += [UInt8](repeating: 0, count: 64 * Int(bitpix) / 8)
            try writeBytes(fixture.singleFile, to: "\(folder)/dt\(code).nii")
            assertNIfTIRejects("\(folder)/dt\(code).nii") {
                if case .unsupportedDatatype(_, Int(code), _) = $0 { return true }; return false
            }
        }
    }

    func testNegativeOrZeroDimIsRejected() throws {
        for dim in [[4, -4, 4], [4, 0, 4]] {
            var fixture = valid()
            fixture.dim = dim
            try writeBytes(fixture.singleFile, to: "\(folder)/neg.nii")
            assertNIfTIRejects("\(folder)/neg.nii") { if case .badDimensions = $0 { return true }; return false }
        }
        var fixture = valid()
        fixture.dim = [4, 4, 4, 1, 1, 1, 1]
        var header = fixture.singleFile
        header[40] = 9   // dim[0] = 9: more than 7 dimensions
        try writeBytes(header, to: "\(folder)/ndim.nii")
        assertNIfTIRejects("\(folder)/ndim.nii") { if case .badDimensions = $0 { return true }; return false }
    }

    /// 32767⁴ float64 voxels would be ~9 PB: refused from the file size, before any allocation.
    func testAbsurdDimIsRejectedBeforeAllocating() throws {
        var fixture = valid()
        fixture.dim = [32767, 32767, 32767, 32767]
        fixture.datatype = 64
        fixture.bitpix = 64
        try writeBytes(fixture.singleFile, to: "\(folder)/huge.nii")
        assertNIfTIRejects("\(folder)/huge.nii") { if case .truncatedData = $0 { return true }; return false }
        try writeGzip(fixture.singleFile, to: "\(folder)/huge.nii.gz")
        assertNIfTIRejects("\(folder)/huge.nii.gz") { if case .truncatedData = $0 { return true }; return false }
    }

    func testTruncatedDataIsRejected() throws {
        let bytes = valid().singleFile
        try writeBytes(Array(bytes.dropLast(10)), to: "\(folder)/cut.nii")
        assertNIfTIRejects("\(folder)/cut.nii") {
            if case .truncatedData(_, 352 + 64, 352 + 54) = $0 { return true }; return false
        }
        // A gzip stream of a short file: ISIZE is exact, so the check happens before loading.
        try writeGzip(Array(bytes.dropLast(10)), to: "\(folder)/cut.nii.gz")
        assertNIfTIRejects("\(folder)/cut.nii.gz") { if case .truncatedData = $0 { return true }; return false }
    }

    /// A gzip file cut in the middle has a meaningless trailer; the load must still fail cleanly.
    func testTruncatedGzipStreamIsRejected() throws {
        var fixture = valid(dim: [64, 64, 64])
        fixture.payload = (0..<(64 * 64 * 64)).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }
        try writeGzip(fixture.singleFile, to: "\(folder)/whole.nii.gz")
        let whole = try readBytes("\(folder)/whole.nii.gz")
        XCTAssertGreaterThan(whole.count, 1000)
        try writeBytes(Array(whole.prefix(whole.count / 2)), to: "\(folder)/half.nii.gz")
        assertNIfTIRejects("\(folder)/half.nii.gz") {
            switch $0 {
            case .truncatedData, .unreadable: return true
            default: return false
            }
        }
        XCTAssertEqual(try NIfTI.read("\(folder)/whole.nii.gz").data.count, 64 * 64 * 64)
    }

    func testGzNameOnANonGzipFileIsRejected() throws {
        try writeBytes(valid().singleFile, to: "\(folder)/plain.nii.gz")
        assertNIfTIRejects("\(folder)/plain.nii.gz") { if case .notGzip = $0 { return true }; return false }
    }

    func testMissingImageFileOfAPairIsRejected() throws {
        try valid().writePair(stem: "\(folder)/lonely")
        try FileManager.default.removeItem(atPath: "\(folder)/lonely.img")
        assertNIfTIRejects("\(folder)/lonely.hdr") { if case .missingImageFile = $0 { return true }; return false }
    }

    func testDirectoryIsNotAFile() {
        assertNIfTIRejects(folder) { if case .isFolder = $0 { return true }; return false }
    }
}
