import Foundation
import XCTest
@testable import MorphoDistributed

/// Runs built executables under `mpirun` (2 ranks on this machine). Needs a build with Open MPI
/// (`make test` installs it); the tests are skipped in builds without it.
class MPIProcessTestCase: XCTestCase {
    struct Run {
        var status: Int32
        var output: String
        var errors: String
        var seconds: Double
        /// Ended by the test for making no progress (a hung job; already reported as a failure).
        var stalled: Bool
    }

    /// The directory of the built products (where the test bundle and the probe live).
    static var productsDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    static func locate(_ name: String) -> String? {
        let candidates = [productsDirectory, Bundle.main.bundleURL.deletingLastPathComponent()]
            + ["/usr/bin", "/usr/local/bin"].map { URL(fileURLWithPath: $0) }
        return candidates.map { $0.appendingPathComponent(name).path }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// `mpirun` and the executable `product` (built next to the tests), or a skip in builds
    /// without Open MPI. Built with it but missing either is a failure.
    func requireMPI(_ product: String = "dataparallel-probe") throws -> (mpirun: String, program: String) {
        try XCTSkipUnless(Distributed.isMPIBuilt, "built without Open MPI (no mpi.h at build time)")
        guard let mpirun = Self.locate("mpirun") else {
            XCTFail("built with Open MPI but mpirun is missing: apt-get install openmpi-bin")
            throw XCTSkip("no mpirun")
        }
        guard let program = Self.locate(product) else {
            XCTFail("\(product) is not next to the tests in \(Self.productsDirectory.path): swift build -c release --product \(product)")
            throw XCTSkip("no \(product)")
        }
        return (mpirun, program)
    }

    /// Runs `executable arguments` to its end, bounded by progress rather than by wall-clock time:
    /// a job that keeps writing (its standard output or error, or one of the `progress` files)
    /// may take as long as a busy machine makes it; one that writes nothing new for `stallLimit`
    /// seconds is hung, and is ended and reported as a failure (unless `reportStall` is false:
    /// for the tests of this rule). Output goes through files, so a chatty child cannot block on
    /// a full pipe.
    func run(_ executable: String, _ arguments: [String], directory: String? = nil,
             environment extra: [String: String] = [:], progress: [String] = [], stallLimit: Double = 180,
             reportStall: Bool = true, file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        var env = ProcessInfo.processInfo.environment
        // Containers and CI run as root; Open MPI refuses that unless told twice.
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        for key in env.keys where key.hasPrefix("OMPI_COMM_WORLD") || key.hasPrefix("PMIX_") { env[key] = nil }
        env.merge(extra) { $1 }
        process.environment = env
        let base = temporaryPath("run-\(UUID().uuidString)")
        let outPath = base + ".out", errPath = base + ".err"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardOutput = out
        process.standardError = err
        let start = Date()
        try process.run()
        var seen = Self.progressSignature([outPath, errPath] + progress)
        var lastProgress = Date()
        var stalled = false
        while process.isRunning {
            usleep(100_000)
            let now = Self.progressSignature([outPath, errPath] + progress)
            if now != seen {
                seen = now
                lastProgress = Date()
            } else if Date().timeIntervalSince(lastProgress) > stallLimit {
                stalled = true
                process.terminate()
                let grace = Date()
                while process.isRunning && Date().timeIntervalSince(grace) < 10 { usleep(100_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                break
            }
        }
        process.waitUntilExit()
        try out.close()
        try err.close()
        let result = Run(status: process.terminationStatus,
                         output: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                         errors: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
                         seconds: Date().timeIntervalSince(start), stalled: stalled)
        if stalled && reportStall {
            XCTFail("\(executable) \(arguments) made no progress for \(Int(stallLimit)) s (hung) and was ended; "
                    + "its last output: \(result.output.suffix(300)) \(result.errors.suffix(300))", file: file, line: line)
        }
        return result
    }

    /// The sizes and modification times of `paths` (absent files count as -1): any change is progress.
    static func progressSignature(_ paths: [String]) -> [Double] {
        paths.flatMap { path -> [Double] in
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return [-1, -1] }
            let size = (attributes[.size] as? NSNumber)?.doubleValue ?? -1
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1
            return [size, modified]
        }
    }

    func mpirun(_ tools: (mpirun: String, program: String), ranks: Int, _ arguments: [String], directory: String? = nil,
                environment: [String: String] = [:], progress: [String] = [], stallLimit: Double = 180,
                file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        try run(tools.mpirun, ["--oversubscribe", "--bind-to", "none", "-np", String(ranks), tools.program] + arguments,
                directory: directory, environment: environment, progress: progress, stallLimit: stallLimit, file: file, line: line)
    }

    func readFloats(_ path: String) throws -> [Float] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    func temporaryPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("morphoseg-mpi-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }
}
