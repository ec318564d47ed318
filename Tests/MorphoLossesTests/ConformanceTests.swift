import MorphoTensor
import Foundation
import MorphoConformance
import MorphoTestSupport
import XCTest

/// The golden fixtures (a copy of /work/shared/fixtures) through the conformance runner, and the
/// runner's own behaviour on broken input.
final class ConformanceTests: XCTestCase {
    static let fixtures = GoldenFixtures.directory

    func testEveryGoldenFixturePasses() throws {
        let files = try ConformanceRunner.fixtureFiles(in: Self.fixtures)
        XCTAssertEqual(files.count, 56, "the fixture folder should hold the 56 golden cases")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("morphoseg-conformance-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let reports = try ConformanceRunner.run(directory: Self.fixtures, resultsDirectory: out)
        XCTAssertEqual(reports.count, files.count)
        for r in reports { XCTAssertTrue(r.passed, r.description) }
        // Every op of FORMAT.md is exercised.
        let ops = Set(try files.map { try Fixture(contentsOf: $0).op })
        XCTAssertEqual(ops, Set(ConformanceOperations.names))
        // One result per case, with the same keys as the fixture.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".json") }.count, files.count)
    }

    func testResultFileHoldsOurOutputAndGradients() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("lcc_2d_w9.json"), to: dir.appendingPathComponent("lcc_2d_w9.json"))
        let out = dir.appendingPathComponent("results")
        let reports = try ConformanceRunner.run(directory: dir, resultsDirectory: out)
        XCTAssertEqual(reports.map(\.passed), [true])
        let written = try Fixture(contentsOf: out.appendingPathComponent("lcc_2d_w9.json"))
        let reference = try Fixture(contentsOf: dir.appendingPathComponent("lcc_2d_w9.json"))
        XCTAssertEqual(written.op, "lcc")
        XCTAssertEqual(Set(written.grads.keys), ["I", "J"])
        XCTAssertEqual(written.output.shape, [])
        // The written values are ours: close to, but not bit-identical with, the float64 reference.
        XCTAssertEqual(written.output.data[0], reference.output.data[0], accuracy: 1e-5)
        XCTAssertEqual(written.inputs["I"]?.data, reference.inputs["I"]?.data)
    }

    func testBrokenCasesFailWithAReasonWhileOthersRun() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("mse_2d.json"), to: dir.appendingPathComponent("b_mse_2d.json"))
        try Data("{ not json".utf8).write(to: dir.appendingPathComponent("a_garbage.json"))
        var unknown = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("mse_2d.json"))) as! [String: Any]
        unknown["op"] = "frobnicate"
        unknown["name"] = "c_unknown"
        try JSONSerialization.data(withJSONObject: unknown).write(to: dir.appendingPathComponent("c_unknown.json"))
        var badLabels = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("balanced_ce_2d_c2.json"))) as! [String: Any]
        var inputs = badLabels["inputs"] as! [String: Any]
        var target = inputs["target"] as! [String: Any]
        var data = target["data"] as! [Any]
        data[0] = 7
        target["data"] = data
        inputs["target"] = target
        badLabels["inputs"] = inputs
        badLabels["name"] = "d_bad_labels"
        try JSONSerialization.data(withJSONObject: badLabels).write(to: dir.appendingPathComponent("d_bad_labels.json"))

        let reports = try ConformanceRunner.run(directory: dir)
        XCTAssertEqual(reports.map(\.name), ["a_garbage", "mse_2d", "c_unknown", "d_bad_labels"])
        XCTAssertEqual(reports.map(\.passed), [false, true, false, false])
        XCTAssertTrue(reports[0].reason?.contains("cannot read fixture") ?? false, reports[0].description)
        XCTAssertTrue(reports[2].reason?.contains("unknown op 'frobnicate'") ?? false, reports[2].description)
        XCTAssertTrue(reports[3].reason?.contains("inputs.target") ?? false, reports[3].description)
    }

    func testWrongOutputFailsThePassRule() throws {
        let fixture = try Fixture(contentsOf: Self.fixtures.appendingPathComponent("mse_2d.json"))
        var result = try ConformanceOperations.run(fixture)
        XCTAssertTrue(ConformanceRunner.compare(fixture, result).passed)
        result.output = result.output * Float(1.01)
        let report = ConformanceRunner.compare(fixture, result)
        XCTAssertFalse(report.passed)
        XCTAssertEqual(report.maxRelError, 0.01, accuracy: 1e-4)
        result = try ConformanceOperations.run(fixture)
        result.grads["J"] = nil
        XCTAssertEqual(ConformanceRunner.compare(fixture, result).reason, "grad J: not computed")
    }

    func scratchDirectory() throws -> URL {
        URL(fileURLWithPath: try makeTemporaryFolder("morphoseg-conformance"), isDirectory: true)
    }
}
