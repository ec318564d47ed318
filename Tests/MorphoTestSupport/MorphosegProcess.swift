import Foundation
import XCTest

/// The built `morphoseg` run as a child process, the way a user runs it.
/// The one home of "run the built binary" for every test target (the command-line tests, and the
/// library tests that check a command end to end).
public enum MorphosegProcess {
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
        public var errors: String
    }

    /// `morphoseg` next to the test bundle (`swift build --product morphoseg` with the tests'
    /// flags, as `make test` does).
    public static var binary: String? {
        let folder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [folder, Bundle.main.bundleURL.deletingLastPathComponent()].map { $0.appendingPathComponent("morphoseg").path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public static func require() throws -> String {
        guard let binary else {
            XCTFail("morphoseg is not built next to the tests: swift build -c release -Xswiftc -enable-testing --product morphoseg")
            throw XCTSkip("no morphoseg binary")
        }
        return binary
    }

    public static func process(_ arguments: [String], directory: String?) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try require())
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        return process
    }

    /// A started child (for tests that kill it); its standard error goes to `errors` if given
    /// (so a child that fails on its own can say why), else nowhere.
    public static func start(_ arguments: [String], directory: String? = nil, errors: String? = nil) throws -> Process {
        let process = try process(arguments, directory: directory)
        process.standardOutput = FileHandle.nullDevice
        if let errors {
            FileManager.default.createFile(atPath: errors, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        return process
    }

    /// Runs `morphoseg arguments` to its end. Output goes through files, not pipes, so a child
    /// that writes much cannot block on a full pipe.
    public static func run(_ arguments: [String], directory: String? = nil) throws -> Result {
        let process = try process(arguments, directory: directory)
        let base = NSTemporaryDirectory() + "morphoseg-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: base + ".out", contents: nil)
        FileManager.default.createFile(atPath: base + ".err", contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: base + ".out")
            try? FileManager.default.removeItem(atPath: base + ".err")
        }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".err"))
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Result(
            status: process.terminationStatus,
            output: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
            errors: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "")
    }
}
