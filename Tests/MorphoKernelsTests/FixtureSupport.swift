import Foundation
import XCTest

/// One golden case from `Fixtures/` (copied from `/work/shared/fixtures`; format in its
/// `FORMAT.md`): tensors as flat row-major `Double` arrays with their shapes.
struct Fixture {
    struct Tensor {
        var shape: [Int]
        var data: [Double]
        var floats: [Float] { data.map { Float($0) } }
        var bools: [Bool] { data.map { $0 != 0 } }
    }
    var name: String
    var params: [String: Any]
    var inputs: [String: Tensor]
    var output: Tensor
    var cotangent: Tensor?
    var grads: [String: Tensor]
    var rtol: Double
    var atol: Double

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Every fixture whose file name starts with `prefix`, sorted by name.
    static func all(_ prefix: String) throws -> [Fixture] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix(prefix) && $0.hasSuffix(".json") }.sorted()
        return try names.map { try Fixture(file: directory.appendingPathComponent($0)) }
    }

    init(file: URL) throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
        func tensor(_ any: Any?) -> Tensor? {
            guard let t = any as? [String: Any] else { return nil }
            return Tensor(shape: t["shape"] as! [Int], data: (t["data"] as! [NSNumber]).map { $0.doubleValue })
        }
        name = json["name"] as! String
        params = json["params"] as? [String: Any] ?? [:]
        inputs = (json["inputs"] as! [String: Any]).mapValues { tensor($0)! }
        output = tensor(json["output"])!
        cotangent = tensor(json["cotangent"])
        grads = (json["grads"] as? [String: Any] ?? [:]).mapValues { tensor($0)! }
        let tol = json["tolerance"] as! [String: Double]
        rtol = tol["rtol"]!; atol = tol["atol"]!
    }

    /// The FORMAT.md pass rule: `max |ours − ref| ≤ atol + rtol · max |ref|`.
    func assertClose(_ ours: [Float], _ ref: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ours.count, ref.data.count, "\(name) \(what): element count", file: file, line: line)
        let maxRef = ref.data.map(abs).max() ?? 0
        var worst = 0.0, at = 0
        for (i, (a, b)) in zip(ours, ref.data).enumerated() where !(abs(Double(a) - b) <= worst) {
            worst = abs(Double(a) - b); at = i
            if worst.isNaN { break }
        }
        XCTAssertLessThanOrEqual(worst, atol + rtol * maxRef,
                                 "\(name) \(what): max error \(worst) at \(at) (ours \(ours[at]), ref \(ref.data[at]))",
                                 file: file, line: line)
    }
}
