import ArgumentParser
import Foundation
import MorphoConformance

/// `morphoseg conformance DIR [--out RESULTS]`: runs the golden loss/op fixtures through the
/// library and reports one line per case.
struct Conformance: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check MorphoSeg's losses and ops against golden fixtures.",
        discussion: """
            Runs every *.json case of DIR (format: fixtures/FORMAT.md) through the same code training uses, \
            prints one line per case (verdict, max absolute and relative error) and then "N passed, M failed". \
            A case passes when, for the output and each gradient, max |ours - ref| <= atol + rtol * max |ref|. \
            Exits with status 1 if any case failed.
            """)

    @Argument(help: "Directory of fixture files (*.json).")
    var directory: String

    @Option(name: .long, help: "Directory to write the results into (each fixture with MorphoSeg's output and grads).")
    var out: String?

    func run() throws {
        let dir = URL(fileURLWithPath: directory)
        let results = out.map { URL(fileURLWithPath: $0) }
        // An unreadable DIR or RESULTS is the one error that stops the run (printed as one line).
        let reports = try ConformanceRunner.run(directory: dir, resultsDirectory: results) { print($0) }
        let failed = reports.filter { !$0.passed }.count
        print("\(reports.count - failed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode(1) }
    }
}
