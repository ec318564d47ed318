import Foundation
import MorphoFuzzing
import MorphoTestSupport
import XCTest

/// The fuzz targets' saved inputs, replayed through the entry points the libFuzzer drivers call
/// (without instrumentation): the seeds must still be read, and every input that once crashed a
/// reader (`Tests/Fuzz/regressions/<target>/`) must now give a value or a one-line error.
final class FuzzCorpusReplayTests: XCTestCase {
    private static let fuzz = Repository.root.appendingPathComponent("Tests/Fuzz")

    /// The files of `Tests/Fuzz/<folder>/<target>/` (README and dot files left out), sorted.
    private func inputs(_ folder: String, _ target: FuzzTarget) throws -> [URL] {
        let dir = Self.fuzz.appendingPathComponent("\(folder)/\(target.rawValue)")
        guard FileManager.default.fileExists(atPath: dir.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") && $0.lastPathComponent != "README.md" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    func testEverySeedIsReadByItsTarget() throws {
        for target in FuzzTarget.allCases {
            let seeds = try inputs("corpus", target)
            XCTAssertGreaterThanOrEqual(seeds.count, 3, "corpus/\(target.rawValue) needs seeds")
            for seed in seeds {
                let bytes = try [UInt8](Data(contentsOf: seed))
                XCTAssertLessThan(bytes.count, 2048, "seed \(seed.lastPathComponent) should stay small")
                let outcomes = target.run(bytes)
                // A seed is a valid file in at least one of the ways its target presents it (the
                // `.hdr`/`.img` seed only as a pair, for instance).
                let read = outcomes.contains { if case .accepted = $0 { true } else { false } }
                XCTAssertTrue(read, "\(target.rawValue)/\(seed.lastPathComponent): \(outcomes)")
            }
        }
    }

    func testSavedCrashInputsGiveAValueOrAOneLineError() throws {
        var replayed = 0
        for target in FuzzTarget.allCases {
            for input in try inputs("regressions", target) {
                let outcomes = target.run(try [UInt8](Data(contentsOf: input)))
                XCTAssertFalse(outcomes.isEmpty)
                for case .rejected(let message) in outcomes {
                    XCTAssertFalse(message.isEmpty, "\(target.rawValue)/\(input.lastPathComponent)")
                    XCTAssertFalse(message.contains("\n"), "\(target.rawValue)/\(input.lastPathComponent): \(message)")
                }
                replayed += 1
            }
        }
        print("replayed \(replayed) saved crash inputs")
    }

    /// Inputs that still crash, kept until the branch that fixes them lands (then they move to
    /// `regressions/`, and the test above replays them).
    func testPendingCrashInputsWaitForTheirFix() throws {
        let pending = try FuzzTarget.allCases.flatMap { try inputs("crashes-pending", $0) }
        guard pending.isEmpty else {
            throw XCTSkip(
                "\(pending.count) inputs in Tests/Fuzz/crashes-pending crash until branch reliability (issue 29) "
                    + "lands; see Tests/Fuzz/crashes-pending/README.md")
        }
    }
}
