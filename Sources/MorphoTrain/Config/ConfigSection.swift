import Foundation
import Yams

/// One YAML mapping of a config file, read key by key with the key path kept for errors.
///
/// Every accessor marks its key as used; `finish()` then rejects keys nobody asked for, so a typo
/// (`optimiser:` for `optimizer:`) is an error instead of a silently ignored setting. Absent keys
/// and explicit `null`/`~` values both give the default. Type errors name the key path and the
/// value found: `training.optimizer.lr: expected a number, got "fast"`.
///
/// Other tasks (registration, joint training) read their own sections with the same type, so
/// every config error in MorphoSeg looks the same.
public final class ConfigSection {
    /// The config file name used in errors.
    public let file: String
    /// Dotted path of this section (`""` for the root).
    public let path: String
    private let pairs: [(key: String, value: Node)]
    private var used: Set<String> = []

    /// The root section of a YAML document. An empty document is an empty mapping.
    ///
    /// - Throws: `MorphoTrainError.configSyntax` when the text is not YAML,
    ///   `.config(key: "(root)")` when the document is not a mapping.
    public convenience init(yaml: String, file: String) throws {
        // Yams composes recursively: thousands of nested levels overflow the stack.
        try YAMLNesting.check(yaml, file: file)
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch {
            let message = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
            throw MorphoTrainError.configSyntax(file: file, message: message)
        }
        guard let node else {
            self.init(file: file, path: "", pairs: [])
            return
        }
        guard case .mapping(let mapping) = node else {
            throw MorphoTrainError.config(file: file, key: "(root)", message: "expected a mapping of sections, got \(Self.describe(node))")
        }
        try self.init(file: file, path: "", mapping: mapping)
    }

    init(file: String, path: String, pairs: [(key: String, value: Node)]) {
        self.file = file
        self.path = path
        self.pairs = pairs
    }

    convenience init(file: String, path: String, mapping: Node.Mapping) throws {
        var pairs: [(key: String, value: Node)] = []
        var seen: Set<String> = []
        for (k, v) in mapping {
            guard let key = k.scalar?.string else {
                throw MorphoTrainError.config(file: file, key: path.isEmpty ? "(root)" : path, message: "keys must be plain names")
            }
            let full = path.isEmpty ? key : "\(path).\(key)"
            guard seen.insert(key).inserted else {
                throw MorphoTrainError.config(file: file, key: full, message: "key appears twice")
            }
            pairs.append((key, v))
        }
        self.init(file: file, path: path, pairs: pairs)
    }

    /// The keys present, in file order.
    public var keys: [String] { pairs.map(\.key) }

    /// The dotted path of `key` in this section.
    public func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// An error about `key` of this section.
    public func error(_ key: String, _ message: String) -> MorphoTrainError {
        .config(file: file, key: keyPath(key), message: message)
    }

    /// Whether `key` is present with a non-null value (does not mark it used).
    public func contains(_ key: String) -> Bool {
        guard let node = pairs.first(where: { $0.key == key })?.value else { return false }
        return !Self.isNull(node)
    }

    /// The node of `key`, nil when absent or null. Marks the key used.
    public func node(_ key: String) -> Node? {
        used.insert(key)
        guard let node = pairs.first(where: { $0.key == key })?.value, !Self.isNull(node) else { return nil }
        return node
    }

    // MARK: Scalars

    /// A number (integers and decimals, `1e-3`, `.inf` is refused).
    public func double(_ key: String) throws -> Double? {
        guard let node = node(key) else { return nil }
        return try Self.double(node, at: keyPath(key), file: file)
    }

    public func double(_ key: String, default value: Double, range: ClosedRange<Double>? = nil) throws -> Double {
        let v = try double(key) ?? value
        if let range, !range.contains(v) {
            throw error(key, "must be in \(Self.format(range.lowerBound))...\(Self.format(range.upperBound)), got \(Self.format(v))")
        }
        return v
    }

    public func int(_ key: String) throws -> Int? {
        guard let node = node(key) else { return nil }
        return try Self.int(node, at: keyPath(key), file: file)
    }

    /// An integer, `value` when absent; `min`/`max` bound it and the error names the bound
    /// (sizes and counts are bounded so that a typo fails here, not in the allocator).
    public func int(_ key: String, default value: Int, min: Int? = nil, max: Int? = nil) throws -> Int {
        let v = try int(key) ?? value
        if let min, v < min { throw error(key, "must be at least \(min), got \(v)") }
        if let max, v > max { throw error(key, "must be at most \(max), got \(v)") }
        return v
    }

    public func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let node = node(key) else { return value }
        guard case .scalar(let s) = node, s.style == .plain else {
            throw error(key, "expected true or false, got \(Self.describe(node))")
        }
        switch s.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(key, "expected true or false, got \(Self.describe(node))")
        }
    }

    public func string(_ key: String) throws -> String? {
        guard let node = node(key) else { return nil }
        guard case .scalar(let s) = node else { throw error(key, "expected a string, got \(Self.describe(node))") }
        return s.string
    }

    public func string(_ key: String, default value: String) throws -> String {
        try string(key) ?? value
    }

    /// One of the raw values of `E`; the error lists them.
    public func choice<E: RawRepresentable & CaseIterable>(_ key: String, default value: E) throws -> E where E.RawValue == String {
        guard let raw = try string(key) else { return value }
        guard let v = E(rawValue: raw) else {
            throw error(key, "expected one of \(E.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(raw)\"")
        }
        return v
    }

    /// One of `allowed` (raw values of `E`, a subset of its cases); the error lists them in order.
    public func choice<E: RawRepresentable & Equatable>(_ key: String, default value: E, among allowed: [E]) throws -> E where E.RawValue == String {
        guard let raw = try string(key) else { return value }
        guard let v = E(rawValue: raw), allowed.contains(v) else {
            throw error(key, "expected one of \(allowed.map(\.rawValue).joined(separator: ", ")), got \"\(raw)\"")
        }
        return v
    }

    // MARK: Lists

    /// A list of numbers; a single number is accepted as a one-element list.
    public func doubles(_ key: String) throws -> [Double]? {
        guard let node = node(key) else { return nil }
        return try list(node, key: key, element: "numbers") { try Self.double($0, at: $1, file: file) }
    }

    /// A list of integers; a single integer is accepted as a one-element list.
    public func ints(_ key: String) throws -> [Int]? {
        guard let node = node(key) else { return nil }
        return try list(node, key: key, element: "integers") { try Self.int($0, at: $1, file: file) }
    }

    /// A list of strings; a single string is accepted as a one-element list.
    public func strings(_ key: String) throws -> [String]? {
        guard let node = node(key) else { return nil }
        return try list(node, key: key, element: "strings") { n, p in
            guard case .scalar(let s) = n else {
                throw MorphoTrainError.config(file: file, key: p, message: "expected a string, got \(Self.describe(n))")
            }
            return s.string
        }
    }

    private func list<T>(_ node: Node, key: String, element: String, _ convert: (Node, String) throws -> T) throws -> [T] {
        switch node {
        case .scalar:
            return [try convert(node, keyPath(key))]
        case .sequence(let seq):
            return try seq.enumerated().map { try convert($0.element, "\(keyPath(key))[\($0.offset)]") }
        default:
            throw error(key, "expected a list of \(element), got \(Self.describe(node))")
        }
    }

    // MARK: Nested sections

    /// The mapping under `key` (an empty section when absent or null).
    public func section(_ key: String) throws -> ConfigSection {
        guard let node = node(key) else { return ConfigSection(file: file, path: keyPath(key), pairs: []) }
        guard case .mapping(let m) = node else {
            throw error(key, "expected a mapping, got \(Self.describe(node))")
        }
        return try ConfigSection(file: file, path: keyPath(key), mapping: m)
    }

    /// Writes `file: key: warning: message` as one line on stderr (deprecated spellings that are
    /// still read).
    public static func warn(file: String, key: String, _ message: String) {
        FileHandle.standardError.write(Data("\(file): \(key): warning: \(message)\n".utf8))
    }

    /// Rejects keys that no accessor asked for. Call after reading every key of the section.
    public func finish() throws {
        for (key, _) in pairs where !used.contains(key) {
            let known = used.sorted().joined(separator: ", ")
            throw error(key, "unknown key" + (known.isEmpty ? "" : " (this section takes: \(known))"))
        }
    }

    // MARK: Conversions

    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node, s.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    static func double(_ node: Node, at path: String, file: String) throws -> Double {
        if case .scalar(let s) = node, s.style == .plain, let v = Double(s.string), v.isFinite { return v }
        throw MorphoTrainError.config(file: file, key: path, message: "expected a number, got \(describe(node))")
    }

    static func int(_ node: Node, at path: String, file: String) throws -> Int {
        if case .scalar(let s) = node, s.style == .plain {
            if let v = Int(s.string) { return v }
            if let d = Double(s.string), d.isFinite, d == d.rounded(), abs(d) < 1e15 { return Int(d) }
        }
        throw MorphoTrainError.config(file: file, key: path, message: "expected an integer, got \(describe(node))")
    }

    /// How a value appears in an error: `"fast"` for scalars, `a list`, `a mapping`.
    static func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return "\"\(s.string)\""
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
    }
}
