import Foundation

/// Header, geometry and value statistics of one NIfTI file: what `morphoseg info` prints.
///
/// The JSON form has exactly the keys of `../shared/data/expected/*.json` (nibabel's view):
/// `format, dim, datatype, pixdim, qform_code, sform_code, affine, scl_slope, scl_inter,
/// stats {min, max, mean, sum}`, with `dim`/`pixdim` in NIfTI order and the statistics in
/// float64 over the finite scaled values, plus `non_finite {nan, inf}`: the voxels left out of
/// the statistics (nibabel's `mean` would be NaN for such a file).
public struct VolumeInfo: Sendable {
    public var path: String
    public var header: NIfTIHeaderInfo
    /// Voxel to world mm, by the sform → qform → `diag(pixdim)` rule.
    public var affine: Affine
    public var statistics: VoxelStatistics

    /// Reads the header and the voxels of `path` (any file `NIfTI.read` accepts).
    public static func read(_ path: String) throws -> VolumeInfo {
        let image = try NIfTIImage.load(path)
        let header = image.header
        var accumulator = StatisticsAccumulator(slope: header.sclSlope, inter: header.sclInter)
        image.visit(&accumulator)
        return VolumeInfo(path: path, header: header, affine: header.bestAffine, statistics: accumulator.result)
    }

    /// One JSON object, keys in the order above.
    public var json: String {
        let s = statistics
        let fields: [(String, String)] = [
            ("format", JSONText.string(header.format.rawValue)),
            ("dim", JSONText.array(header.dim.map(String.init))),
            ("datatype", JSONText.string(header.datatype.rawValue)),
            ("pixdim", JSONText.array(header.pixdim.map(JSONText.number))),
            ("qform_code", String(header.qformCode)),
            ("sform_code", String(header.sformCode)),
            ("affine", JSONText.array(affine.matrix.map { JSONText.array($0.map(JSONText.number)) })),
            ("scl_slope", JSONText.number(header.sclSlope)),
            ("scl_inter", JSONText.number(header.sclInter)),
            ("stats", JSONText.object([
                ("min", JSONText.number(s.min)), ("max", JSONText.number(s.max)),
                ("mean", JSONText.number(s.mean)), ("sum", JSONText.number(s.sum)),
            ])),
            ("non_finite", JSONText.object([("nan", String(s.nanCount)), ("inf", String(s.infiniteCount))])),
        ]
        return JSONText.object(fields)
    }

    /// A few aligned lines for people.
    public var summary: String {
        let h = header
        let spatial = h.dim.prefix(3).map(String.init).joined(separator: " × ")
        let extra = h.dim.count > 3 ? " × " + h.dim.dropFirst(3).map(String.init).joined(separator: " × ") : ""
        let units = h.xyzUnits == 2 ? "mm" : h.xyzUnits == 1 ? "m" : h.xyzUnits == 3 ? "µm" : "(unknown units)"
        func fmt(_ x: Double) -> String {
            x.rounded() == x && abs(x) < 1e15 ? String(Int64(x)) : String(format: "%.6g", x)
        }
        var lines = [
            "file      \(path)",
            "format    \(h.format.rawValue), \(h.datatype.rawValue)",
            "dim       \(spatial)\(extra)  (x, y, z, …)",
            "pixdim    \(h.pixdim.map(fmt).joined(separator: " × ")) \(units)",
            "qform     code \(h.qformCode) (\(Self.codeName(h.qformCode)))",
            "sform     code \(h.sformCode) (\(Self.codeName(h.sformCode)))",
        ]
        lines.append(contentsOf: affine.matrix.prefix(3).enumerated().map { row, values in
            (row == 0 ? "affine    " : "          ") + values.map { String(format: "%.6g", $0).leftPadded(to: 12) }.joined(separator: " ")
        })
        if h.sclSlope != 1 || h.sclInter != 0 { lines.append("scaling   × \(fmt(h.sclSlope)) + \(fmt(h.sclInter))") }
        if h.intentCode != 0 { lines.append("intent    \(h.intentCode)\(h.intentName.isEmpty ? "" : " (\(h.intentName))")") }
        if !h.descrip.isEmpty { lines.append("descrip   \(h.descrip)") }
        let s = statistics
        lines.append("values    min \(fmt(s.min))  max \(fmt(s.max))  mean \(String(format: "%.6g", s.mean))  (\(s.count) voxels)")
        if s.nonFiniteCount > 0 {
            lines.append("non-finite \(s.nanCount) NaN, \(s.infiniteCount) infinite voxels (left out of the values above)")
        }
        return lines.joined(separator: "\n")
    }

    static func codeName(_ code: Int) -> String {
        switch code {
        case 0: return "unknown"
        case 1: return "scanner"
        case 2: return "aligned"
        case 3: return "talairach"
        case 4: return "mni152"
        case 5: return "template"
        default: return "non-standard"
        }
    }
}

/// Statistics of scaled voxel values, accumulated in float64 over the finite ones
/// (`mean = sum / finite count`); NaN and infinite voxels are counted apart and left out.
public struct VoxelStatistics: Equatable, Sendable {
    public var min: Double
    public var max: Double
    public var sum: Double
    /// All voxels, finite or not.
    public var count: Int
    public var nanCount: Int
    /// Voxels at +∞ or −∞.
    public var infiniteCount: Int
    public var nonFiniteCount: Int { nanCount + infiniteCount }
    public var mean: Double { count > nonFiniteCount ? sum / Double(count - nonFiniteCount) : .nan }

    public init(min: Double, max: Double, sum: Double, count: Int, nanCount: Int = 0, infiniteCount: Int = 0) {
        self.min = min
        self.max = max
        self.sum = sum
        self.count = count
        self.nanCount = nanCount
        self.infiniteCount = infiniteCount
    }

    /// Statistics of in-memory values (e.g. a `Volume`'s `data`).
    public init<S: Sequence>(_ values: S) where S.Element: BinaryFloatingPoint {
        var acc = StatisticsAccumulator(slope: 1, inter: 0)
        for v in values { acc.add(Double(v)) }
        self = acc.result
    }
}

struct StatisticsAccumulator: RawVoxelVisitor {
    let slope: Double, inter: Double
    private var low = Double.infinity, high = -Double.infinity, sum = 0.0, count = 0, nan = 0, infinite = 0

    init(slope: Double, inter: Double) {
        self.slope = slope
        self.inter = inter
    }

    @inline(__always)
    mutating func add(_ v: Double) {
        count += 1
        guard v.isFinite else {
            if v.isNaN { nan += 1 } else { infinite += 1 }
            return
        }
        if v < low { low = v }
        if v > high { high = v }
        sum += v
    }

    mutating func visit<T: RawVoxel>(_ raw: UnsafeBufferPointer<T>) {
        for x in raw { add(x.doubleValue * slope + inter) }
    }

    var result: VoxelStatistics {
        low > high
            ? VoxelStatistics(min: .nan, max: .nan, sum: sum, count: count, nanCount: nan, infiniteCount: infinite)
            : VoxelStatistics(min: low, max: high, sum: sum, count: count, nanCount: nan, infiniteCount: infinite)
    }
}

/// Minimal JSON text building with keys kept in order and doubles printed so they read back
/// to the same value (Swift's shortest round-trip form). Non-finite numbers become `null`.
enum JSONText {
    static func number(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }

    static func string(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func array(_ items: [String]) -> String { "[" + items.joined(separator: ", ") + "]" }

    static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\(string($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
