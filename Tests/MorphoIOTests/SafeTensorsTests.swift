import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

final class SafeTensorsTests: XCTestCase {
    /// A file built by hand from the format description: length, compact JSON, space padding to
    /// a multiple of 8, then the tensors in the writer's order (8-byte, 4-byte, 1-byte elements).
    private var handBuilt: [UInt8] {
        let json = #"{"__metadata__":{"epoch":"3","format":"pt"},"step":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"# +
            #""w":{"dtype":"F32","shape":[2,1],"data_offsets":[8,16]},"mask":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}}"#
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        let length = UInt64(header.count)
        let lengthBytes = (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) }
        let step: [UInt8] = [7, 0, 0, 0, 0, 0, 0, 0]                 // Int64 7
        let w: [UInt8] = [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]  // Float 1.0, -2.0
        let mask: [UInt8] = [0, 1, 255]
        return lengthBytes + header + step + w + mask
    }

    private var handBuiltContents: SafeTensorsFile {
        SafeTensorsFile(
            tensors: [
                "step": SafeTensor([Int64(7)], shape: []),
                "w": SafeTensor([Float(1), -2], shape: [2, 1]),
                "mask": SafeTensor([UInt8(0), 1, 255], shape: [3]),
            ],
            metadata: ["epoch": "3", "format": "pt"])
    }

    func testEncodingMatchesAHandBuiltFileByteForByte() {
        XCTAssertEqual(SafeTensors.encode(handBuiltContents), handBuilt)
    }

    func testDecodingAHandBuiltFileGivesItsTensors() throws {
        let file = try SafeTensors.decode(handBuilt)
        XCTAssertEqual(file, handBuiltContents)
        XCTAssertEqual(file.tensors["w"]?.floats(), [1, -2])
        XCTAssertEqual(file.tensors["step"]?.int64s(), [7])
        XCTAssertEqual(file.tensors["mask"]?.uint8s(), [0, 1, 255])
    }

    /// Other writers order keys differently and pretty-print; offsets are what count.
    func testDecodingAcceptsAnyKeyOrderAndWhitespace() throws {
        let json = #"{ "b": {"data_offsets": [4, 8], "shape": [1], "dtype": "I32"},  "a": {"shape": [1], "dtype": "F32", "data_offsets": [0, 4]} }"#
        let header = Array(json.utf8)
        let bytes = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(header.count) >> (8 * $0)) } + header
            + [0x00, 0x00, 0x40, 0x40] + [0xfe, 0xff, 0xff, 0xff]   // Float 3.0, Int32 -2
        let file = try SafeTensors.decode(bytes)
        XCTAssertEqual(file.tensors["a"]?.floats(), [3])
        XCTAssertEqual(file.tensors["b"]?.int64s(), [-2])
        XCTAssertEqual(file.metadata, [:])
    }

    func testRoundTripThroughAFileKeepsEveryTensor() throws {
        let folder = try temporaryFolder("morphoio")
        let weights: [Float] = (0..<162).map { Float($0) * 0.125 - 7 }   // 2·3·3·3·3
        let original = SafeTensorsFile(
            tensors: [
                "enc.0.conv.weight": SafeTensor(weights, shape: [2, 3, 3, 3, 3]),
                "enc.0.conv.bias": SafeTensor([Float.pi, -0, .infinity], shape: [3]),
                "optimizer.step": SafeTensor([Int64.max, Int64.min, 0], shape: [3]),
                "labels": SafeTensor([UInt8](0...255), shape: [16, 16]),
                "moments": SafeTensor([1e-300, 2.5], shape: [2]),
                "counts": SafeTensor([Int32.min, 5], shape: [1, 2]),
                "empty": SafeTensor([Float](), shape: [0, 4]),
            ],
            metadata: ["config": "{\"lr\": 0.001}\nline two", "unicode": "Δx µm"])
        try SafeTensors.write(original, to: "\(folder)/model.safetensors")
        let back = try SafeTensors.read("\(folder)/model.safetensors")
        XCTAssertEqual(back, original)
        XCTAssertEqual(back.tensors["enc.0.conv.weight"]?.floats(), weights)
        XCTAssertEqual(back.tensors["optimizer.step"]?.int64s(), [Int64.max, Int64.min, 0])
        XCTAssertEqual(back.tensors["moments"]?.floats(), [Float(1e-300), 2.5])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["model.safetensors"])
        let bytes = try readBytes("\(folder)/model.safetensors")
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual((8 + headerLength) % 8, 0, "data starts on an 8-byte boundary")
    }

    func testHalfAndBFloat16WidenExactly() {
        let half = SafeTensor(dtype: .F16, shape: [6], bytes: [0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x7c, 0x00, 0x80])
        let values = half.floats()
        XCTAssertEqual(Array(values.prefix(5)), [1, -2, 65504, 0x1p-24, .infinity])
        XCTAssertEqual(values[5], 0)
        XCTAssertEqual(values[5].sign, .minus)
        let bf16 = SafeTensor(dtype: .BF16, shape: [2], bytes: [0x80, 0x3f, 0x49, 0x40])
        XCTAssertEqual(bf16.floats(), [1, Float(bitPattern: 0x4049_0000)])
        XCTAssertNil(bf16.int64s())
    }

    func testMalformedFilesAreRejectedWithTheirKey() {
        func file(_ json: String, data: [UInt8]) -> [UInt8] {
            let header = Array(json.utf8)
            return (0..<8).map { UInt8(truncatingIfNeeded: UInt64(header.count) >> (8 * $0)) } + header + data
        }
        let cases: [(String, [UInt8], String)] = [
            ("short", [1, 2, 3], "header"),
            ("length past end", [0xff, 0, 0, 0, 0, 0, 0, 0, 0x7b], "header"),
            ("absurd length", [0, 0, 0, 0, 0, 0, 0, 0x10], "header"),
            ("not json", file("{nope", data: []), "header"),
            ("not an object", file("[1]", data: []), "header"),
            ("unknown dtype", file(#"{"x":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}}"#, data: [0]), "x"),
            ("size mismatch", file(#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "x"),
            ("negative shape", file(#"{"x":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}"#, data: []), "x"),
            ("past the data", file(#"{"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#, data: [0, 0]), "x"),
            ("gap", file(#"{"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, data: [0, 0]), "x"),
            ("overlap", file(#"{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"y":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, data: [0, 0]), "y"),
            ("trailing bytes", file(#"{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [0, 9]), "data"),
            ("metadata not strings", file(#"{"__metadata__":{"a":1}}"#, data: []), "__metadata__"),
            ("entry not a tensor", file(#"{"x":3}"#, data: []), "x"),
        ]
        for (what, bytes, key) in cases {
            XCTAssertThrowsError(try SafeTensors.decode(bytes, path: "m.safetensors"), what) { error in
                guard case MorphoIOError.badSafeTensors("m.safetensors", key, _) = error else {
                    return XCTFail("\(what): \(error)")
                }
                XCTAssertTrue("\(error)".hasPrefix("m.safetensors: safetensors \(key): "), "\(error)")
                XCTAssertFalse("\(error)".contains("\n"))
            }
        }
    }

    func testReadingAMissingFileOrWritingIntoAMissingFolderFails() throws {
        let folder = try temporaryFolder("morphoio")
        XCTAssertThrowsError(try SafeTensors.read("\(folder)/none.safetensors")) { error in
            guard case MorphoIOError.fileNotFound = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try SafeTensors.write(handBuiltContents, to: "\(folder)/no/dir/x.safetensors")) { error in
            guard case MorphoIOError.writeFailed = error else { return XCTFail("\(error)") }
        }
    }
}
