import Foundation
import MorphoTensor

/// Errors of the conformance runner: each names the fixture file and, where it applies, the key.
public enum ConformanceError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case directory(path: String, reason: String)
    case malformed(path: String, key: String, reason: String)
    case unknownOp(path: String, op: String)
    case unsupported(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read fixture (\(reason))"
        case let .directory(path, reason): return "\(path): \(reason)"
        case let .malformed(path, key, reason): return "\(path): \(key): \(reason)"
        case let .unknownOp(path, op): return "\(path): unknown op '\(op)'"
        case let .unsupported(path, reason): return "\(path): \(reason)"
        }
    }
}

/// A `TENSOR` of the fixture format: `{shape, dtype, data}`, data row-major.
public struct FixtureTensor {
    public var shape: [Int]
    public var dtype: String
    public var data: [Double]

    public init(shape: [Int], dtype: String = "float32", data: [Double]) {
        self.shape = shape
        self.dtype = dtype
        self.data = data
    }

    /// The values as a Float32 tensor (int64 labels become integral floats).
    public var tensor: Tensor { Tensor(shape: shape, data: data.map { Float($0) }) }

    /// JSON form; non-finite values (which JSON cannot hold) become null.
    var json: [String: Any] {
        ["shape": shape, "dtype": dtype, "data": data.map { $0.isFinite ? $0 as Any : NSNull() }]
    }

    init(_ any: Any?, path: String, key: String) throws {
        guard let t = any as? [String: Any] else { throw ConformanceError.malformed(path: path, key: key, reason: "not a tensor object") }
        guard let shape = t["shape"] as? [Int], shape.allSatisfy({ $0 >= 0 }) else {
            throw ConformanceError.malformed(path: path, key: "\(key).shape", reason: "missing or not a list of sizes")
        }
        guard let dtype = t["dtype"] as? String, dtype == "float32" || dtype == "int64" else {
            throw ConformanceError.malformed(path: path, key: "\(key).dtype", reason: "expected float32 or int64")
        }
        guard let raw = t["data"] as? [Any] else { throw ConformanceError.malformed(path: path, key: "\(key).data", reason: "missing") }
        var data: [Double] = []
        data.reserveCapacity(raw.count)
        for v in raw {
            guard let n = v as? NSNumber else { throw ConformanceError.malformed(path: path, key: "\(key).data", reason: "non-numeric entry") }
            data.append(n.doubleValue)
        }
        guard data.count == shape.reduce(1, *) else {
            throw ConformanceError.malformed(path: path, key: "\(key).data", reason: "\(data.count) values for shape \(shape)")
        }
        self.init(shape: shape, dtype: dtype, data: data)
    }
}

/// One golden case (format: fixtures/FORMAT.md).
public struct Fixture {
    public var path: String
    public var name: String
    public var op: String
    public var params: [String: Any]
    public var inputs: [String: FixtureTensor]
    public var cotangent: FixtureTensor?
    public var output: FixtureTensor
    public var grads: [String: FixtureTensor]
    public var rtol: Double
    public var atol: Double
    /// The whole JSON object, kept so results can be written back with only output/grads replaced.
    var json: [String: Any]

    public init(contentsOf url: URL) throws {
        let path = url.path
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        } catch {
            throw ConformanceError.unreadable(path: path, reason: "\(error.localizedDescription)")
        }
        guard let json = object as? [String: Any] else { throw ConformanceError.malformed(path: path, key: "(root)", reason: "not an object") }
        self.json = json
        self.path = path
        guard let name = json["name"] as? String else { throw ConformanceError.malformed(path: path, key: "name", reason: "missing") }
        guard let op = json["op"] as? String else { throw ConformanceError.malformed(path: path, key: "op", reason: "missing") }
        self.name = name
        self.op = op
        params = json["params"] as? [String: Any] ?? [:]
        guard let rawInputs = json["inputs"] as? [String: Any] else {
            throw ConformanceError.malformed(path: path, key: "inputs", reason: "missing")
        }
        inputs = try rawInputs.reduce(into: [:]) { $0[$1.key] = try FixtureTensor($1.value, path: path, key: "inputs.\($1.key)") }
        cotangent = try json["cotangent"].flatMap { $0 is NSNull ? nil : try FixtureTensor($0, path: path, key: "cotangent") }
        output = try FixtureTensor(json["output"], path: path, key: "output")
        let rawGrads = json["grads"] as? [String: Any] ?? [:]
        grads = try rawGrads.reduce(into: [:]) { $0[$1.key] = try FixtureTensor($1.value, path: path, key: "grads.\($1.key)") }
        for key in grads.keys where inputs[key] == nil {
            throw ConformanceError.malformed(path: path, key: "grads.\(key)", reason: "gradient of an input that does not exist")
        }
        guard let tol = json["tolerance"] as? [String: Any], let rtol = (tol["rtol"] as? NSNumber)?.doubleValue,
              let atol = (tol["atol"] as? NSNumber)?.doubleValue else {
            throw ConformanceError.malformed(path: path, key: "tolerance", reason: "needs rtol and atol")
        }
        self.rtol = rtol
        self.atol = atol
    }

    // MARK: Typed access for the operations

    public func input(_ key: String) throws -> Tensor {
        guard let t = inputs[key] else { throw ConformanceError.malformed(path: path, key: "inputs.\(key)", reason: "missing") }
        return t.tensor
    }

    func param(_ key: String) throws -> Any {
        guard let v = params[key], !(v is NSNull) else { throw ConformanceError.malformed(path: path, key: "params.\(key)", reason: "missing") }
        return v
    }

    public func double(_ key: String) throws -> Double {
        guard let n = try param(key) as? NSNumber else { throw ConformanceError.malformed(path: path, key: "params.\(key)", reason: "not a number") }
        return n.doubleValue
    }

    public func float(_ key: String) throws -> Float { Float(try double(key)) }

    public func int(_ key: String) throws -> Int {
        let v = try double(key)
        guard let i = Int(exactly: v) else { throw ConformanceError.malformed(path: path, key: "params.\(key)", reason: "not an integer") }
        return i
    }

    public func bool(_ key: String) throws -> Bool {
        guard let b = try param(key) as? Bool else { throw ConformanceError.malformed(path: path, key: "params.\(key)", reason: "not a boolean") }
        return b
    }

    public func string(_ key: String) throws -> String {
        guard let s = try param(key) as? String else { throw ConformanceError.malformed(path: path, key: "params.\(key)", reason: "not a string") }
        return s
    }

    public func doubles(_ key: String) throws -> [Double] {
        guard let a = try param(key) as? [NSNumber] else { throw ConformanceError.malformed(path: path, key: "params.\(key)", reason: "not a list of numbers") }
        return a.map(\.doubleValue)
    }

    public func ints(_ key: String) throws -> [Int] {
        try doubles(key).map { v in
            guard let i = Int(exactly: v) else { throw ConformanceError.malformed(path: path, key: "params.\(key)", reason: "not a list of integers") }
            return i
        }
    }

    public func optionalDouble(_ key: String) throws -> Double? {
        guard let v = params[key], !(v is NSNull) else { return nil }
        return try double(key)
    }

    /// Fails unless `condition` holds, naming `key`.
    func require(_ condition: Bool, _ key: String, _ reason: @autoclosure () -> String) throws {
        if !condition { throw ConformanceError.malformed(path: path, key: key, reason: reason()) }
    }
}
