import Foundation

/// ITK's binary transform format (`.mat`), which ANTs writes as `0GenericAffine.mat`.
///
/// **The format** (ITK's `MatlabTransformIO`, on VNL's MATLAB level-4 writer): a sequence of
/// variables, each a 20-byte header of five 32-bit integers, then the name, then the values:
///
///     int32 type     byte order + storage + precision, summed: 1000 = big-endian (0 little),
///                    100 = row-wise (0 column-wise), 10 = float32 (0 float64)
///     int32 mrows    number of values (a column vector)
///     int32 ncols    1 (ITK refuses anything else)
///     int32 imagf    0 (no imaginary part)
///     int32 namlen   length of the name including its terminating NUL
///     namlen bytes   the name, NUL-terminated
///     mrows × ncols  values, float64 or float32 in the header's byte order
///
/// Variables come in pairs: the parameters, named with the transform's class
/// (`AffineTransform_double_3_3`: 12 values, the matrix row by row then the translation),
/// then the fixed parameters, named `fixed` (the centre, 3 values). The header integers
/// themselves are in the writer's byte order, which the type's thousands digit states; a reader
/// recognises a swapped header by a type outside 0…4999 (or a negative count). Values are LPS
/// millimetres (see `ITKAffineTransform`). Several pairs form an ITK composite, as in text files.
public enum ITKTransformMatlab {
    /// Parses a `.mat` file's bytes; `path` only names it in errors.
    public static func parse(_ bytes: [UInt8], path: String = "<mat>") throws -> ITKAffineTransform {
        var variables: [(name: String, values: [Double])] = []
        var at = 0
        while at < bytes.count {
            guard bytes.count - at >= 20 else {
                throw MorphoIOError.badTransformFile(path: path, reason: "\(bytes.count - at) stray bytes after the last variable")
            }
            var bigEndian = false
            var header = (0..<5).map { readInt32(bytes, at + 4 * $0, bigEndian: false) }
            if !(0..<5000).contains(header[0]) || header[1] < 0 || header[2] < 0 || header[4] < 0 {
                bigEndian = true
                header = (0..<5).map { readInt32(bytes, at + 4 * $0, bigEndian: true) }
            }
            let (type, rows, cols, imaginary, nameLength) = (header[0], header[1], header[2], header[3], header[4])
            guard (0..<5000).contains(type), (type / 1000 == 1) == bigEndian, type % 10 == 0,
                  (type % 100) / 10 <= 1, rows >= 0, nameLength >= 1
            else {
                throw MorphoIOError.badTransformFile(path: path, reason: "variable header at byte \(at) is not MATLAB level 4 (type \(type))")
            }
            guard cols == 1, imaginary == 0 else {
                throw MorphoIOError.badTransformFile(path: path, reason: "only real column vectors are transform parameters (found \(rows)×\(cols))")
            }
            let single = (type % 100) / 10 == 1
            let width = single ? 4 : 8
            let nameStart = at + 20, dataStart = nameStart + Int(nameLength)
            let end = dataStart + Int(rows) * width
            guard end <= bytes.count else {
                throw MorphoIOError.badTransformFile(path: path, reason: "variable at byte \(at) runs past the end of the file")
            }
            let name = String(decoding: bytes[nameStart..<dataStart].prefix { $0 != 0 }, as: UTF8.self)
            var values: [Double] = []
            for i in 0..<Int(rows) {
                let o = dataStart + i * width
                if single {
                    values.append(Double(Float(bitPattern: UInt32(bitPattern: readInt32(bytes, o, bigEndian: bigEndian)))))
                } else {
                    var bits: UInt64 = 0
                    for b in 0..<8 { bits |= UInt64(bytes[o + (bigEndian ? 7 - b : b)]) << (8 * UInt64(b)) }
                    values.append(Double(bitPattern: bits))
                }
            }
            variables.append((name, values))
            at = end
        }
        guard variables.count % 2 == 0 else {
            throw MorphoIOError.badTransformFile(path: path, reason: "\(variables.count) variables; expected pairs of parameters and 'fixed'")
        }
        var records: [(name: String, parameters: [Double], fixed: [Double])] = []
        for pair in stride(from: 0, to: variables.count, by: 2) {
            records.append((variables[pair].name, variables[pair].values, variables[pair + 1].values))
        }
        return try ITKAffineTransform.fromRecords(records, path: path)
    }

    /// The bytes of a `.mat` holding `transform`, little-endian, as ITK writes it on x86/ARM.
    public static func bytes(of transform: ITKAffineTransform, scalar: ITKTransformName.Scalar = .double) -> [UInt8] {
        var out: [UInt8] = []
        let name = ITKTransformName(scalar: scalar, dimension: transform.dimension).description
        append(transform.parameters, name: name, scalar: scalar, to: &out)
        append(transform.center, name: "fixed", scalar: scalar, to: &out)
        return out
    }

    private static func append(_ values: [Double], name: String, scalar: ITKTransformName.Scalar, to out: inout [UInt8]) {
        let nameBytes = Array(name.utf8) + [0]
        for v in [Int32(scalar == .float ? 10 : 0), Int32(values.count), 1, 0, Int32(nameBytes.count)] {
            withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
        }
        out.append(contentsOf: nameBytes)
        for v in values {
            if scalar == .float {
                withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { out.append(contentsOf: $0) }
            } else {
                withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) }
            }
        }
    }

    private static func readInt32(_ bytes: [UInt8], _ at: Int, bigEndian: Bool) -> Int32 {
        var v: UInt32 = 0
        for b in 0..<4 { v |= UInt32(bytes[at + (bigEndian ? 3 - b : b)]) << (8 * UInt32(b)) }
        return Int32(bitPattern: v)
    }
}
