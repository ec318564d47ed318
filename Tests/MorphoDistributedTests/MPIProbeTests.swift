import Foundation
import XCTest
@testable import MorphoDistributed

/// Runs the `dataparallel-probe` executable under `mpirun` (2 ranks on this machine). Needs a
/// build with Open MPI (`make test` installs it); skipped in builds without it.
final class MPIProbeTests: XCTestCase {
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

    func requireMPI() throws -> (mpirun: String, probe: String) {
        try XCTSkipUnless(Distributed.isMPIBuilt, "built without Open MPI (no mpi.h at build time)")
        guard let mpirun = Self.locate("mpirun") else {
            XCTFail("built with Open MPI but mpirun is missing: apt-get install openmpi-bin")
            throw XCTSkip("no mpirun")
        }
        guard let probe = Self.locate("dataparallel-probe") else {
            XCTFail("dataparallel-probe is not next to the tests in \(Self.productsDirectory.path): swift build -c release --product dataparallel-probe")
            throw XCTSkip("no probe")
        }
        return (mpirun, probe)
    }

    /// Runs `executable arguments` with a deadline (a hung job is killed and reported).
    func run(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        // Containers and CI run as root; Open MPI refuses that unless told twice.
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        for key in env.keys where key.hasPrefix("OMPI_COMM_WORLD") || key.hasPrefix("PMIX_") { env[key] = nil }
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

    func mpirun(_ tools: (mpirun: String, probe: String), ranks: Int, _ arguments: [String]) throws -> Run {
        try run(tools.mpirun, ["--oversubscribe", "--bind-to", "none", "-np", String(ranks), tools.probe] + arguments)
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

    func testTwoRanksEndWithTheWeightsOfOneProcessOnTheGlobalBatch() throws {
        let tools = try requireMPI()
        // Batch 4 splits 2 + 2; batch 3 splits 2 + 1 then 1 + 2 (weighted averaging).
        for batch in [4, 3] {
            let one = temporaryPath("one-\(batch).f32"), two = temporaryPath("two-\(batch).f32")
            let single = try run(tools.probe, ["equivalence", "--steps", "4", "--batch", String(batch), "--output", one])
            XCTAssertEqual(single.status, 0, single.errors)
            let parallel = try mpirun(tools, ranks: 2, ["equivalence", "--steps", "4", "--batch", String(batch), "--output", two])
            XCTAssertEqual(parallel.status, 0, parallel.errors)
            XCTAssertTrue(parallel.output.contains("\"ranks\":2"), parallel.output)
            XCTAssertTrue(parallel.output.contains("\"divergence\":0.0"), "the two replicas differ: \(parallel.output)")
            let a = try readFloats(one), b = try readFloats(two)
            XCTAssertEqual(a.count, b.count)
            XCTAssertGreaterThan(a.count, 1000)
            let scale = a.map(abs).max()!
            let worst = zip(a, b).map { abs($0 - $1) }.max()!
            XCTAssertGreaterThan(scale, 0.1)
            XCTAssertLessThan(worst, 1e-6, "batch \(batch): 2 ranks differ from 1 process by \(worst) (weights up to \(scale))")
            // The weights did move: the comparison is not between two untouched initialisations.
            let initial = temporaryPath("zero-\(batch).f32")
            XCTAssertEqual(try run(tools.probe, ["equivalence", "--steps", "0", "--batch", String(batch), "--output", initial]).status, 0)
            XCTAssertGreaterThan(zip(a, try readFloats(initial)).map { abs($0 - $1) }.max()!, 1e-3)
        }
    }

    func testNonFiniteLossOnOneRankStopsEveryRankWithOneMessage() throws {
        let tools = try requireMPI()
        let result = try mpirun(tools, ranks: 2, ["equivalence", "--steps", "4", "--batch", "4", "--nan-rank", "1", "--nan-step", "1"])
        XCTAssertNotEqual(result.status, 0)
        let ours = result.errors.split(separator: "\n").filter { $0.hasPrefix("error") }
        XCTAssertEqual(ours, ["error: the loss is not finite at step 2; stopped on every rank"], result.errors)
        XCTAssertFalse(result.output.contains("losses"), "no rank may finish training: \(result.output)")
    }

    func testAFailureOnOneRankAbortsTheWholeJob() throws {
        let tools = try requireMPI()
        // Rank 0 cannot write its output while rank 1 waits in a collective: MPI_Abort must end both.
        let result = try mpirun(tools, ranks: 2, ["equivalence", "--steps", "1", "--batch", "2", "--output", "/nonexistent-dir/w.f32"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.errors.contains("error (rank 0 of 2): /nonexistent-dir/w.f32"), result.errors)
    }

    func testPlainRunOfAnMPIBuildIsOneProcess() throws {
        let tools = try requireMPI()
        let result = try run(tools.probe, ["info"])
        XCTAssertEqual(result.status, 0, result.errors)
        XCTAssertEqual(result.output, "{\"ranks\":1,\"mpi_built\":true,\"launched_by_mpi\":false}\n")
        let launched = try mpirun(tools, ranks: 2, ["info"])
        XCTAssertEqual(launched.output, "{\"ranks\":2,\"mpi_built\":true,\"launched_by_mpi\":true}\n", launched.errors)
    }
}
