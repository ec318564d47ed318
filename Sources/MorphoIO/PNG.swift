import CNIfTI

/// 8-bit PNG output (grayscale or RGB), for slices, overlays and figures. Compression is zlib's
/// `compress2`, checksums zlib's `crc32`; writes are atomic.
public enum PNG {
    public enum Color: Sendable {
        /// One byte per pixel (PNG colour type 0).
        case gray
        /// Three bytes per pixel, `r, g, b` (PNG colour type 2).
        case rgb

        public var channels: Int { self == .gray ? 1 : 3 }
        var colorType: UInt8 { self == .gray ? 0 : 2 }
    }

    /// Writes `pixels` — rows top to bottom, each row left to right, `color.channels` bytes per
    /// pixel interleaved — as a PNG file.
    ///
    /// - Throws: `MorphoIOError.shapeMismatch` when `pixels.count != width * height *
    ///   color.channels` or a size is not positive; `.writeFailed` when the file cannot be written.
    public static func write(_ pixels: [UInt8], width: Int, height: Int, color: Color, to path: String) throws {
        try FileChecks.atomicWrite(encode(pixels, width: width, height: height, color: color, path: path), to: path)
    }

    /// The PNG file's bytes (see `write`). `path` only names the destination in errors.
    public static func encode(_ pixels: [UInt8], width: Int, height: Int, color: Color, path: String = "<png>") throws -> [UInt8] {
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw MorphoIOError.shapeMismatch(path: path, reason: "PNG size \(width) × \(height) must be positive")
        }
        let rowBytes = width * color.channels
        guard let expected = checkedProduct([rowBytes, height]), pixels.count == expected else {
            throw MorphoIOError.shapeMismatch(
                path: path, reason: "\(pixels.count) bytes for a \(width) × \(height) \(color) image, expected \(rowBytes * height)")
        }
        // Each scanline is preceded by its filter type; 0 (None) keeps decoding trivial.
        var scanlines = [UInt8](repeating: 0, count: (rowBytes + 1) * height)
        pixels.withUnsafeBufferPointer { source in
            scanlines.withUnsafeMutableBufferPointer { target in
                for row in 0..<height {
                    let out = target.baseAddress! + row * (rowBytes + 1) + 1
                    out.update(from: source.baseAddress! + row * rowBytes, count: rowBytes)
                }
            }
        }
        var compressedLength = compressBound(UInt(scanlines.count))
        var compressed = [UInt8](repeating: 0, count: Int(compressedLength))
        let status = compress2(&compressed, &compressedLength, scanlines, UInt(scanlines.count), 6)
        guard status == Z_OK else { throw MorphoIOError.writeFailed(path: path, reason: "zlib compress2 failed (\(status))") }
        compressed.removeSubrange(Int(compressedLength)...)

        var header = bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        header += [8, color.colorType, 0, 0, 0]   // bit depth, colour type, deflate, filter set 0, no interlace
        var png: [UInt8] = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
        png += chunk("IHDR", header)
        png += chunk("IDAT", compressed)
        png += chunk("IEND", [])
        return png
    }

    /// Length, type, data, CRC-32 of type and data.
    private static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + data
        let crc = typed.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) }
        return bigEndian(UInt32(data.count)) + typed + bigEndian(UInt32(crc))
    }

    private static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
    }
}
