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

    /// Runs `executable arguments` with a deadline (a hung job is killed and reported).
    func run(_ executable: String, _ arguments: [String], timeout: Double = 60, directory: String? = nil,
             environment extra: [String: String] = [:]) throws -> Run {
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
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let start = Date()
        try process.run()
        let deadline = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: deadline)
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        deadline.cancel()
        let seconds = Date().timeIntervalSince(start)
        XCTAssertLessThan(seconds, timeout, "\(executable) \(arguments) did not finish in \(timeout) s")
        return Run(status: process.terminationStatus, output: String(decoding: outData, as: UTF8.self),
                   errors: String(decoding: errData, as: UTF8.self), seconds: seconds)
    }

    func mpirun(_ tools: (mpirun: String, program: String), ranks: Int, _ arguments: [String], directory: String? = nil,
                environment: [String: String] = [:]) throws -> Run {
        try run(tools.mpirun, ["--oversubscribe", "--bind-to", "none", "-np", String(ranks), tools.program] + arguments,
                directory: directory, environment: environment)
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
