import Foundation

/// Element types of the safetensors format, spelled as in its header.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case BOOL, U8, I8, U16, I16, F16, BF16, U32, I32, F32, U64, I64, F64

    public var byteSize: Int {
        switch self {
        case .BOOL, .U8, .I8: return 1
        case .U16, .I16, .F16, .BF16: return 2
        case .U32, .I32, .F32: return 4
        case .U64, .I64, .F64: return 8
        }
    }
}

/// One tensor: dtype, shape (row-major, last index fastest — a MorphoSeg `[N, C, D, H, W]`
/// tensor keeps that order) and its raw little-endian bytes.
public struct SafeTensor: Equatable, Sendable {
    public var dtype: SafeTensorsDType
    /// Sizes, outermost first; `[]` is a scalar (one element).
    public var shape: [Int]
    /// `elementCount * dtype.byteSize` bytes, little-endian.
    public var bytes: [UInt8]

    /// - Precondition: `bytes.count == shape.product * dtype.byteSize`, sizes non-negative.
    public init(dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "SafeTensor shape \(shape) has a negative size")
        precondition(bytes.count == shape.reduce(1, *) * dtype.byteSize,
                     "SafeTensor \(dtype) \(shape) needs \(shape.reduce(1, *) * dtype.byteSize) bytes, got \(bytes.count)")
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    public init(_ values: [Float], shape: [Int]) { self.init(dtype: .F32, shape: shape, bytes: littleEndianBytes(values.map(\.bitPattern))) }
    public init(_ values: [Double], shape: [Int]) { self.init(dtype: .F64, shape: shape, bytes: littleEndianBytes(values.map(\.bitPattern))) }
    public init(_ values: [Int64], shape: [Int]) { self.init(dtype: .I64, shape: shape, bytes: littleEndianBytes(values)) }
    public init(_ values: [Int32], shape: [Int]) { self.init(dtype: .I32, shape: shape, bytes: littleEndianBytes(values)) }
    public init(_ values: [UInt8], shape: [Int]) { self.init(dtype: .U8, shape: shape, bytes: values) }

    public var elementCount: Int { shape.reduce(1, *) }

    /// Values of any dtype as `Float` (integers and F64 rounded to nearest, BOOL as 0/1, F16 and
    /// BF16 widened exactly).
    public func floats() -> [Float] {
        switch dtype {
        case .F32: return elements(UInt32.self).map(Float.init(bitPattern:))
        case .F64: return elements(UInt64.self).map { Float(Double(bitPattern: $0)) }
        case .F16: return elements(UInt16.self).map(floatFromHalf)
        case .BF16: return elements(UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
        case .BOOL: return bytes.map { $0 == 0 ? 0 : 1 }
        case .U8: return bytes.map { Float($0) }
        case .I8: return bytes.map { Float(Int8(bitPattern: $0)) }
        case .U16: return elements(UInt16.self).map { Float($0) }
        case .I16: return elements(Int16.self).map { Float($0) }
        case .U32: return elements(UInt32.self).map { Float($0) }
        case .I32: return elements(Int32.self).map { Float($0) }
        case .U64: return elements(UInt64.self).map { Float($0) }
        case .I64: return elements(Int64.self).map { Float($0) }
        }
    }

    /// Integer values, or `nil` for floating-point dtypes (and U64 values above `Int64.max`).
    public func int64s() -> [Int64]? {
        switch dtype {
        case .BOOL, .U8: return bytes.map { Int64($0) }
        case .I8: return bytes.map { Int64(Int8(bitPattern: $0)) }
        case .U16: return elements(UInt16.self).map { Int64($0) }
        case .I16: return elements(Int16.self).map { Int64($0) }
        case .U32: return elements(UInt32.self).map { Int64($0) }
        case .I32: return elements(Int32.self).map { Int64($0) }
        case .I64: return elements(Int64.self)
        case .U64:
            let values = elements(UInt64.self)
            return values.allSatisfy({ $0 <= UInt64(Int64.max) }) ? values.map { Int64($0) } : nil
        case .F16, .BF16, .F32, .F64: return nil
        }
    }

    /// The bytes of a U8 or BOOL tensor, else `nil`.
    public func uint8s() -> [UInt8]? { dtype == .U8 || dtype == .BOOL ? bytes : nil }

    private func elements<T: FixedWidthInteger>(_: T.Type) -> [T] {
        bytes.withUnsafeBytes { raw in
            (0..<elementCount).map { T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
        }
    }
}

/// Tensors by name plus the optional `__metadata__` string map.
public struct SafeTensorsFile: Equatable, Sendable {
    public var tensors: [String: SafeTensor]
    public var metadata: [String: String]

    public init(tensors: [String: SafeTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }
}

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length `N`,
/// `N` bytes of UTF-8 JSON `{name: {"dtype", "shape", "data_offsets": [begin, end]}, …,
/// "__metadata__": {string: string}}`, then the tensors' little-endian bytes, offsets relative to
/// the end of the header.
public enum SafeTensors {
    /// Headers larger than this are refused before parsing (the reference implementation's limit).
    public static let maximumHeaderBytes = 100_000_000

    public static func read(_ path: String) throws -> SafeTensorsFile {
        guard FileChecks.exists(path) else { throw FileChecks.missing(path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MorphoIOError.unreadable(path: path, reason: "could not read the file")
        }
        return try decode([UInt8](data), path: path)
    }

    /// Writes atomically (temporary file in the same folder, then rename).
    public static func write(_ file: SafeTensorsFile, to path: String) throws {
        try FileChecks.atomicWrite(encode(file), to: path)
    }

    /// The file's bytes. Layout is deterministic: `__metadata__` first (when not empty), then the
    /// tensors by element size (largest first, so every tensor starts at a multiple of its element
    /// size) and name; compact JSON padded with spaces so the data starts at a multiple of 8.
    public static func encode(_ file: SafeTensorsFile) -> [UInt8] {
        let order = file.tensors.keys.sorted {
            let a = file.tensors[$0]!.dtype.byteSize, b = file.tensors[$1]!.dtype.byteSize
            return a != b ? a > b : $0 < $1
        }
        var entries: [String] = []
        if !file.metadata.isEmpty {
            let pairs = file.metadata.keys.sorted().map { "\(JSONText.string($0)):\(JSONText.string(file.metadata[$0]!))" }
            entries.append("\"__metadata__\":{" + pairs.joined(separator: ",") + "}")
        }
        var offset = 0
        for name in order {
            let t = file.tensors[name]!
            let shape = t.shape.map(String.init).joined(separator: ",")
            entries.append("\(JSONText.string(name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}")
            offset += t.bytes.count
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        while (8 + header.count) % 8 != 0 { header.append(0x20) }
        var out = littleEndianBytes([UInt64(header.count)])
        out.reserveCapacity(8 + header.count + offset)
        out += header
        for name in order { out += file.tensors[name]!.bytes }
        return out
    }

    /// Parses and validates: header length within the file, JSON object, known dtypes, sizes
    /// matching shapes, tensors inside the data and covering it without gaps or overlaps, and
    /// `__metadata__` a string map. `path` only names the source in errors.
    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws -> SafeTensorsFile {
        func fail(_ key: String, _ reason: String) -> MorphoIOError {
            .badSafeTensors(path: path, key: key, reason: reason)
        }
        guard bytes.count >= 8 else { throw fail("header", "file of \(bytes.count) bytes is shorter than the 8-byte length") }
        let length = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(maximumHeaderBytes) else { throw fail("header", "length \(length) exceeds \(maximumHeaderBytes) bytes") }
        guard length <= UInt64(bytes.count - 8) else {
            throw fail("header", "length \(length) runs past the end of the \(bytes.count)-byte file")
        }
        let headerEnd = 8 + Int(length)
        let headerBytes = bytes[8..<headerEnd]
        guard headerBytes.first == UInt8(ascii: "{") else { throw fail("header", "does not start with '{'") }
        guard String(validating: headerBytes, as: UTF8.self) != nil else { throw fail("header", "not valid UTF-8") }
        let object: [String: HeaderEntry]
        do {
            object = try JSONDecoder().decode([String: HeaderEntry].self, from: Data(headerBytes))
        } catch {
            throw fail("header", "not a JSON object")
        }

        var file = SafeTensorsFile()
        let dataCount = bytes.count - headerEnd
        var spans: [(begin: Int, end: Int, name: String)] = []
        for (name, value) in object {
            if name == "__metadata__" {
                guard case .strings(let map) = value else { throw fail(name, "must be an object of strings") }
                file.metadata = map
                continue
            }
            guard case .tensor(let dtypeName, let shape, let offsets) = value else {
                throw fail(name, "entry is not {dtype, shape, data_offsets}")
            }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else { throw fail(name, "unknown dtype \(dtypeName)") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw fail(name, "shape \(shape) has a negative size") }
            guard offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw fail(name, "data_offsets must be [begin, end] with 0 <= begin <= end")
            }
            guard offsets[1] <= dataCount else {
                throw fail(name, "data_offsets end \(offsets[1]) is past the \(dataCount) data bytes")
            }
            guard let count = checkedProduct(shape + [dtype.byteSize]), count == offsets[1] - offsets[0] else {
                throw fail(name, "\(dtype.rawValue) \(shape) does not match \(offsets[1] - offsets[0]) bytes")
            }
            file.tensors[name] = SafeTensor(dtype: dtype, shape: shape, bytes: Array(bytes[(headerEnd + offsets[0])..<(headerEnd + offsets[1])]))
            spans.append((offsets[0], offsets[1], name))
        }
        spans.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var covered = 0
        for span in spans {
            guard span.begin == covered else {
                throw fail(span.name, span.begin < covered ? "overlaps the previous tensor" : "leaves a gap of \(span.begin - covered) bytes before it")
            }
            covered = span.end
        }
        guard covered == dataCount else { throw fail("data", "\(dataCount - covered) bytes after the last tensor") }
        return file
    }
}

/// One value of the header object: a tensor description, the `__metadata__` string map, or
/// something else (reported by the caller with the key's name).
private enum HeaderEntry: Decodable {
    case tensor(dtype: String, shape: [Int], offsets: [Int])
    case strings([String: String])
    case other

    private struct Fields: Decodable {
        var dtype: String
        var shape: [Int]
        var data_offsets: [Int]
    }

    init(from decoder: Decoder) throws {
        if let fields = try? Fields(from: decoder) {
            self = .tensor(dtype: fields.dtype, shape: fields.shape, offsets: fields.data_offsets)
        } else if let map = try? [String: String](from: decoder) {
            self = .strings(map)
        } else {
            self = .other
        }
    }
}

private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(values.count * MemoryLayout<T>.size)
    for v in values { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    return out
}

/// IEEE binary16 → binary32, exact (subnormals, infinities and NaN included).
private func floatFromHalf(_ h: UInt16) -> Float {
    let sign: Float = h & 0x8000 != 0 ? -1 : 1
    let exponent = Int((h >> 10) & 0x1f), fraction = Float(h & 0x3ff)
    switch exponent {
    case 0: return sign * fraction * 0x1p-24
    case 31: return fraction == 0 ? sign * .infinity : .nan
    default: return sign * (1 + fraction / 1024) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
    }
}
