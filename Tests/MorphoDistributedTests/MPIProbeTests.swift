import Foundation
import XCTest
@testable import MorphoDistributed
import MorphoTestSupport

/// `dataparallel-probe` under `mpirun`: the communicator and the data-parallel step outside the trainer.
final class MPIProbeTests: MPIProcessTestCase {
    func testTwoRanksEndWithTheWeightsOfOneProcessOnTheGlobalBatch() throws {
        let tools = try requireMPI()
        // Batch 4 splits 2 + 2; batch 3 splits 2 + 1 then 1 + 2 (weighted averaging).
        for batch in [4, 3] {
            let one = temporaryPath("one-\(batch).f32"), two = temporaryPath("two-\(batch).f32")
            let single = try run(tools.program, ["equivalence", "--steps", "4", "--batch", String(batch), "--output", one])
            XCTAssertEqual(single.status, 0, single.errors)
            let parallel = try mpirun(tools, ranks: 2, ["equivalence", "--steps", "4", "--batch", String(batch), "--output", two])
            XCTAssertEqual(parallel.status, 0, parallel.errors)
            XCTAssertTrue(parallel.output.contains("\"ranks\":2"), parallel.output)
            XCTAssertTrue(parallel.output.contains("\"divergence\":0.0"), "the two replicas differ: \(parallel.output)")
            let a = try readFloats(one), b = try readFloats(two)
            XCTAssertEqual(a.count, b.count)
            XCTAssertGreaterThan(a.count, 1000)
            let scale = a.map(abs).reduce(0, nanStrictMax)
            let worst = zip(a, b).map { abs($0 - $1) }.reduce(0, nanStrictMax)
            XCTAssertGreaterThan(scale, 0.1)
            XCTAssertLessThan(worst, 1e-6, "batch \(batch): 2 ranks differ from 1 process by \(worst) (weights up to \(scale))")
            // The weights did move: the comparison is not between two untouched initialisations.
            let initial = temporaryPath("zero-\(batch).f32")
            XCTAssertEqual(try run(tools.program, ["equivalence", "--steps", "0", "--batch", String(batch), "--output", initial]).status, 0)
            XCTAssertGreaterThan(zip(a, try readFloats(initial)).map { abs($0 - $1) }.reduce(0, nanStrictMax), 1e-3)
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
        let result = try run(tools.program, ["info"])
        XCTAssertEqual(result.status, 0, result.errors)
        XCTAssertEqual(result.output, "{\"ranks\":1,\"mpi_built\":true,\"launched_by_mpi\":false}\n")
        let launched = try mpirun(tools, ranks: 2, ["info"])
        XCTAssertEqual(launched.output, "{\"ranks\":2,\"mpi_built\":true,\"launched_by_mpi\":true}\n", launched.errors)
    }
}
