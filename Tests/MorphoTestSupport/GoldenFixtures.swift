import Foundation
import MorphoConformance
import MorphoTensor
import XCTest

/// The golden cases (a copy of /work/shared/fixtures; format in `Fixtures/FORMAT.md`), read
/// by the library's own reader, `MorphoConformance.Fixture`: one copy of the files, one reader.
public enum GoldenFixtures {
    /// The folder holding every golden case.
    public static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// The case `<name>.json`.
    public static func named(_ name: String) throws -> Fixture {
        try Fixture(contentsOf: directory.appendingPathComponent("\(name).json"))
    }
}

extension Fixture {
    /// Every golden case whose file name starts with `prefix`, sorted by name.
    public static func all(_ prefix: String) throws -> [Fixture] {
        let names = try FileManager.default.contentsOfDirectory(atPath: GoldenFixtures.directory.path)
            .filter { $0.hasPrefix(prefix) && $0.hasSuffix(".json") }.sorted()
        return try names.map { try Fixture(contentsOf: GoldenFixtures.directory.appendingPathComponent($0)) }
    }

    /// The FORMAT.md pass rule: `max |ours − ref| ≤ atol + rtol · max |ref|`.
    public func assertClose(_ ours: [Float], _ ref: FixtureTensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ours.count, ref.data.count, "\(name) \(what): element count", file: file, line: line)
        let maxRef = ref.data.map(abs).reduce(0, nanStrictMax)
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

extension FixtureTensor {
    /// The values as Float32, row-major.
    public var floats: [Float] { data.map { Float($0) } }
    /// The values as a mask: non-zero is true.
    public var bools: [Bool] { data.map { $0 != 0 } }
}

/// One golden case with its tensors as MorphoTensor values, for tests of the differentiable ops.
public struct GoldenCase {
    public var name: String
    public var params: [String: Any]
    public var inputs: [String: Tensor]
    public var output: Tensor
    public var cotangent: Tensor?
    public var grads: [String: Tensor]
    public var rtol: Double
    public var atol: Double

    /// The case `<name>.json` of `GoldenFixtures.directory`.
    public init(_ name: String) throws {
        let fixture = try GoldenFixtures.named(name)
        self.name = name
        params = fixture.params
        inputs = fixture.inputs.mapValues(\.tensor)
        output = fixture.output.tensor
        cotangent = fixture.cotangent?.tensor
        grads = fixture.grads.mapValues(\.tensor)
        rtol = fixture.rtol
        atol = fixture.atol
    }

    /// The FORMAT.md pass rule: max |ours − ref| ≤ atol + rtol · max |ref|.
    public func assertClose(_ ours: Tensor?, _ ref: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let ours else { return XCTFail("\(name) \(what): missing", file: file, line: line) }
        XCTAssertEqual(ours.count, ref.count, "\(name) \(what): element count", file: file, line: line)
        var worst = 0.0, maxRef = 0.0
        for i in 0..<min(ours.count, ref.count) {
            worst = nanStrictMax(worst, Swift.abs(Double(ours[flat: i]) - Double(ref[flat: i])))
            maxRef = nanStrictMax(maxRef, Swift.abs(Double(ref[flat: i])))
        }
        XCTAssertLessThanOrEqual(worst, atol + rtol * maxRef, "\(name) \(what): max error \(worst)", file: file, line: line)
    }
}
