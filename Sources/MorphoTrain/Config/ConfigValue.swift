import Foundation

/// A resolved config as an ordered tree, written out as the run's `config.yaml` (every default
/// filled in) and stored in checkpoint metadata. Parsing that text again gives the same config.
public indirect enum ConfigValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case list([ConfigValue])
    case map([(String, ConfigValue)])

    public static func == (a: ConfigValue, b: ConfigValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.list(let x), .list(let y)): return x == y
        case (.map(let x), .map(let y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Block-style YAML: mappings one key per line (nested ones indented by two spaces), lists of
    /// scalars inline (`[16, 32, 64]`), strings double-quoted unless they are plain words.
    public func yaml() -> String {
        var out = ""
        emit(into: &out, indent: 0)
        return out
    }

    private func emit(into out: inout String, indent: Int) {
        guard case .map(let pairs) = self else {
            out += scalarText + "\n"
            return
        }
        let pad = String(repeating: " ", count: indent)
        for (key, value) in pairs {
            if case .map(let inner) = value, !inner.isEmpty {
                out += "\(pad)\(key):\n"
                value.emit(into: &out, indent: indent + 2)
            } else {
                out += "\(pad)\(key): \(value.scalarText)\n"
            }
        }
    }

    /// The inline form of a scalar, a list, or an empty mapping.
    var scalarText: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .number(let d):
            // Shortest round-tripping decimal; always with a dot or exponent so it reads as a float.
            let s = "\(d)"
            return s.contains(".") || s.contains("e") ? s : s + ".0"
        case .string(let s): return Self.quoted(s)
        case .list(let items): return "[" + items.map(\.scalarText).joined(separator: ", ") + "]"
        case .map(let pairs):
            return "{" + pairs.map { "\($0.0): \($0.1.scalarText)" }.joined(separator: ", ") + "}"
        }
    }

    /// Plain when the string is a simple word YAML would not read as anything else.
    static func quoted(_ s: String) -> String {
        let plainChars = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "_-./"))
        let reserved: Set<String> = ["true", "false", "yes", "no", "on", "off", "null", "~"]
        let plain = !s.isEmpty && s.unicodeScalars.allSatisfy { plainChars.contains($0) && $0.isASCII }
            && !reserved.contains(s.lowercased()) && Double(s) == nil && Int(s) == nil
            && !s.hasPrefix("-") && !s.hasPrefix(".")
        if plain { return s }
        var escaped = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            default: escaped.unicodeScalars.append(ch)
            }
        }
        return escaped + "\""
    }
}

extension ConfigValue {
    static func ints(_ v: [Int]) -> ConfigValue { .list(v.map { .int($0) }) }
    static func numbers(_ v: [Double]) -> ConfigValue { .list(v.map { .number($0) }) }
    static func strings(_ v: [String]) -> ConfigValue { .list(v.map { .string($0) }) }
    static func optional(_ v: Double?) -> ConfigValue { v.map { .number($0) } ?? .null }
    static func optional(_ v: [Int]?) -> ConfigValue { v.map { ints($0) } ?? .null }
    static func optional(_ v: [Double]?) -> ConfigValue { v.map { numbers($0) } ?? .null }
    static func optional(_ v: String?) -> ConfigValue { v.map { .string($0) } ?? .null }
}
