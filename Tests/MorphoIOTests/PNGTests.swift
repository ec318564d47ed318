import CNIfTI
import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// PNG output decoded back with zlib, independently of the encoder's code.
final class PNGTests: XCTestCase {
    private struct Decoded {
        var width = 0, height = 0, bitDepth = 0, colorType = 0, interlace = 0
        var chunkTypes: [String] = []
        var pixels: [UInt8] = []
    }

    /// Parses chunks (checking every CRC), inflates the IDAT stream and undoes filter type 0.
    private func decode(_ png: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> Decoded {
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "signature", file: file, line: line)
        func u32(_ at: Int) -> Int { png[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        var result = Decoded()
        var idat: [UInt8] = []
        var at = 8
        while at < png.count {
            let length = u32(at)
            let typed = Array(png[(at + 4)..<(at + 8 + length)])
            let type = String(decoding: typed.prefix(4), as: UTF8.self)
            let data = Array(typed.dropFirst(4))
            let crc = typed.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) }
            XCTAssertEqual(Int(crc), u32(at + 8 + length), "CRC of \(type)", file: file, line: line)
            result.chunkTypes.append(type)
            if type == "IHDR" {
                result.width = data[0..<4].reduce(0) { $0 << 8 | Int($1) }
                result.height = data[4..<8].reduce(0) { $0 << 8 | Int($1) }
                result.bitDepth = Int(data[8])
                result.colorType = Int(data[9])
                result.interlace = Int(data[12])
            }
            if type == "IDAT" { idat += data }
            at += 12 + length
        }
        let channels = result.colorType == 2 ? 3 : 1
        let rowBytes = result.width * channels
        var inflatedLength = UInt((rowBytes + 1) * result.height)
        var inflated = [UInt8](repeating: 0, count: Int(inflatedLength))
        XCTAssertEqual(uncompress(&inflated, &inflatedLength, idat, UInt(idat.count)), Z_OK, file: file, line: line)
        XCTAssertEqual(Int(inflatedLength), (rowBytes + 1) * result.height, file: file, line: line)
        for row in 0..<result.height {
            XCTAssertEqual(inflated[row * (rowBytes + 1)], 0, "filter type", file: file, line: line)
            result.pixels += inflated[(row * (rowBytes + 1) + 1)..<((row + 1) * (rowBytes + 1))]
        }
        return result
    }

    func testRGBImageDecodesToTheSamePixelsWithValidCRCs() throws {
        let folder = try temporaryFolder("morphoio")
        let width = 37, height = 11
        var pixels: [UInt8] = []
        for y in 0..<height { for x in 0..<width { pixels += [UInt8(x * 6), UInt8(y * 20), UInt8((x * y) % 256)] } }
        try PNG.write(pixels, width: width, height: height, color: .rgb, to: "\(folder)/curve.png")
        let decoded = try decode(try readBytes("\(folder)/curve.png"))
        XCTAssertEqual(decoded.chunkTypes, ["IHDR", "IDAT", "IEND"])
        XCTAssertEqual([decoded.width, decoded.height, decoded.bitDepth, decoded.colorType, decoded.interlace], [37, 11, 8, 2, 0])
        XCTAssertEqual(decoded.pixels, pixels)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["curve.png"])
    }

    func testGrayImageDecodesToTheSamePixels() throws {
        let pixels = (0..<(64 * 3)).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let decoded = try decode(try PNG.encode(pixels, width: 64, height: 3, color: .gray))
        XCTAssertEqual([decoded.width, decoded.height, decoded.colorType], [64, 3, 0])
        XCTAssertEqual(decoded.pixels, pixels)
        XCTAssertEqual(try decode(try PNG.encode([200], width: 1, height: 1, color: .gray)).pixels, [200])
    }

    /// The IEND chunk of every PNG is the same 12 bytes, CRC included (PNG specification).
    func testIENDChunkHasTheSpecifiedCRC() throws {
        let png = try PNG.encode([1, 2, 3], width: 1, height: 1, color: .rgb)
        XCTAssertEqual(Array(png.suffix(12)), [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82])
    }

    func testWrongPixelCountOrSizeIsRejected() {
        XCTAssertThrowsError(try PNG.encode([1, 2, 3], width: 2, height: 1, color: .rgb, path: "a.png")) { error in
            guard case MorphoIOError.shapeMismatch("a.png", _) = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try PNG.encode([], width: 0, height: 5, color: .gray))
    }
}
