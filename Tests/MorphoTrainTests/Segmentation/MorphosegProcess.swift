import Foundation
import XCTest

/// Runs the built `morphoseg` executable (SwiftPM builds it next to the test bundle).
enum MorphosegProcess {
    struct Result {
        var status: Int32
        var output: String
        var errors: String
    }

    static var executable: String? {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [products, Bundle.main.bundleURL.deletingLastPathComponent()].map { $0.appendingPathComponent("morphoseg").path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// `morphoseg arguments…`; skips the test when the executable was not built.
    static func run(_ arguments: [String]) throws -> Result {
        guard let executable else { throw XCTSkip("morphoseg is not built next to the tests (swift build --product morphoseg)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, output: String(decoding: output, as: UTF8.self), errors: String(decoding: errors, as: UTF8.self))
    }
}
