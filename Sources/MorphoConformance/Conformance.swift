import Foundation
import MorphoTensor

/// What an operation produced for one fixture: the forward result and the gradients of the
/// differentiated inputs (named as in the fixture's `grads`).
public struct OperationResult {
    public var output: Tensor
    public var grads: [String: Tensor]

    public init(output: Tensor, grads: [String: Tensor] = [:]) {
        self.output = output
        self.grads = grads
    }
}

/// The verdict on one case.
public struct CaseReport: Sendable, CustomStringConvertible {
    public var name: String
    public var passed: Bool
    /// Largest |ours − ref| over the output and every gradient.
    public var maxAbsError: Double
    /// Largest |ours − ref| / max |ref| over the output and every gradient.
    public var maxRelError: Double
    /// Why the case failed (the first failing tensor, or the error that stopped it).
    public var reason: String?

    /// One line: verdict, name, errors and the reason of a failure.
    public var description: String {
        let name = self.name.padding(toLength: max(self.name.count, 34), withPad: " ", startingAt: 0)
        var line = "\(passed ? "PASS" : "FAIL")  \(name)  max abs \(format(maxAbsError))  max rel \(format(maxRelError))"
        if let reason { line += "  (\(reason))" }
        return line
    }

    private func format(_ v: Double) -> String { v.isFinite ? String(format: "%.2e", v) : "\(v)" }
}

/// Runs golden fixtures through the library code training uses (see `ConformanceOperations`)
/// and compares with FORMAT.md's rule, per tensor: `max |ours − ref| ≤ atol + rtol · max |ref|`.
public enum ConformanceRunner {
    /// Every `*.json` of `directory`, sorted by file name.
    public static func fixtureFiles(in directory: URL) throws -> [URL] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw ConformanceError.directory(path: directory.path, reason: "not a readable directory of fixtures")
        }
        return names.filter { $0.hasSuffix(".json") }.sorted().map { directory.appendingPathComponent($0) }
    }

    /// Runs every fixture of `directory`, writing each result (the fixture with MorphoSeg's
    /// `output` and `grads`) into `resultsDirectory` if given, and calling `report` after each.
    public static func run(directory: URL, resultsDirectory: URL? = nil, report: (CaseReport) -> Void = { _ in }) throws -> [CaseReport] {
        let files = try fixtureFiles(in: directory)
        if let out = resultsDirectory {
            do {
                try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            } catch {
                throw ConformanceError.directory(path: out.path, reason: "cannot create the results directory")
            }
        }
        var reports: [CaseReport] = []
        for file in files {
            let r = run(file: file, resultsDirectory: resultsDirectory)
            report(r)
            reports.append(r)
        }
        return reports
    }

    /// Runs one fixture file. Never throws: a malformed fixture, an unknown op or a failure to
    /// write the result is a failed case with its reason.
    public static func run(file: URL, resultsDirectory: URL? = nil) -> CaseReport {
        let fallbackName = file.deletingPathExtension().lastPathComponent
        let fixture: Fixture
        do {
            fixture = try Fixture(contentsOf: file)
        } catch {
            return CaseReport(name: fallbackName, passed: false, maxAbsError: .nan, maxRelError: .nan, reason: "\(error)")
        }
        let result: OperationResult
        do {
            result = try ConformanceOperations.run(fixture)
        } catch {
            return CaseReport(name: fixture.name, passed: false, maxAbsError: .nan, maxRelError: .nan, reason: "\(error)")
        }
        var report = compare(fixture, result)
        if let dir = resultsDirectory {
            do {
                try write(fixture, result, to: dir.appendingPathComponent(file.lastPathComponent))
            } catch {
                report.passed = false
                report.reason = (report.reason.map { $0 + "; " } ?? "") + "cannot write result: \(error)"
            }
        }
        return report
    }

    /// Applies the pass rule to the output and every reference gradient.
    public static func compare(_ fixture: Fixture, _ result: OperationResult) -> CaseReport {
        var maxAbs = 0.0, maxRel = 0.0
        var reason: String?
        func check(_ what: String, _ ours: Tensor?, _ ref: FixtureTensor) {
            guard let ours else {
                reason = reason ?? "\(what): not computed"
                maxAbs = .infinity; maxRel = .infinity
                return
            }
            guard ours.shape == ref.shape else {
                reason = reason ?? "\(what): shape \(ours.shape), reference \(ref.shape)"
                maxAbs = .infinity; maxRel = .infinity
                return
            }
            var err = 0.0, refMax = 0.0
            ours.withUnsafeBufferPointer { p in
                for (a, b) in zip(p, ref.data) {
                    let e = Swift.abs(Double(a) - b)
                    err = e.isNaN ? .infinity : Swift.max(err, e)
                    refMax = Swift.max(refMax, Swift.abs(b))
                }
            }
            let rel = refMax > 0 ? err / refMax : (err > 0 ? .infinity : 0)
            maxAbs = Swift.max(maxAbs, err)
            maxRel = Swift.max(maxRel, rel)
            let bound = fixture.atol + fixture.rtol * refMax
            if !(err <= bound) {
                reason = reason ?? "\(what): max error \(String(format: "%.3e", err)) > \(String(format: "%.3e", bound))"
            }
        }
        check("output", result.output, fixture.output)
        for key in fixture.grads.keys.sorted() { check("grad \(key)", result.grads[key], fixture.grads[key]!) }
        return CaseReport(name: fixture.name, passed: reason == nil, maxAbsError: maxAbs, maxRelError: maxRel, reason: reason)
    }

    /// Writes the fixture with `output` and `grads` replaced by MorphoSeg's values.
    static func write(_ fixture: Fixture, _ result: OperationResult, to url: URL) throws {
        func json(_ t: Tensor) -> [String: Any] {
            FixtureTensor(shape: t.shape, data: t.scalars.map { Double($0) }).json
        }
        var object = fixture.json
        object["output"] = json(result.output)
        if !fixture.grads.isEmpty {
            var grads: [String: Any] = [:]
            for key in fixture.grads.keys { if let g = result.grads[key] { grads[key] = json(g) } }
            object["grads"] = grads
        }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        try data.write(to: url)
    }
}
