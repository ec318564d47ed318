import Foundation
import MorphoTensor
import XCTest

/// One golden JSON case from `Fixtures/` (copied from the shared fixtures; format in their
/// `FORMAT.md`), with its tensors as MorphoTensor values.
struct GoldenCase {
    var name: String
    var params: [String: Any]
    var inputs: [String: Tensor]
    var output: Tensor
    var cotangent: Tensor?
    var grads: [String: Tensor]
    var rtol: Double
    var atol: Double

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    init(_ name: String) throws {
        let url = GoldenCase.directory.appendingPathComponent("\(name).json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        func tensor(_ any: Any?) -> Tensor? {
            guard let t = any as? [String: Any] else { return nil }
            return Tensor(shape: t["shape"] as! [Int], data: (t["data"] as! [NSNumber]).map { $0.floatValue })
        }
        self.name = name
        params = json["params"] as? [String: Any] ?? [:]
        inputs = (json["inputs"] as! [String: Any]).mapValues { tensor($0)! }
        output = tensor(json["output"])!
        cotangent = tensor(json["cotangent"])
        grads = (json["grads"] as? [String: Any] ?? [:]).mapValues { tensor($0)! }
        let tolerance = json["tolerance"] as! [String: Double]
        rtol = tolerance["rtol"]!
        atol = tolerance["atol"]!
    }

    /// The FORMAT.md pass rule: max |ours − ref| ≤ atol + rtol · max |ref|.
    func assertClose(_ ours: Tensor?, _ ref: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let ours else { return XCTFail("\(name) \(what): missing", file: file, line: line) }
        XCTAssertEqual(ours.count, ref.count, "\(name) \(what): element count", file: file, line: line)
        var worst = 0.0, maxRef = 0.0
        for i in 0..<min(ours.count, ref.count) {
            worst = max(worst, Swift.abs(Double(ours[flat: i]) - Double(ref[flat: i])))
            maxRef = max(maxRef, Swift.abs(Double(ref[flat: i])))
        }
        XCTAssertLessThanOrEqual(worst, atol + rtol * maxRef, "\(name) \(what): max error \(worst)", file: file, line: line)
    }
}
