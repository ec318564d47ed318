import Foundation
import XCTest

/// The rule `MPIProcessTestCase.run` bounds child jobs by: progress, not wall-clock time.
final class ProgressBoundRunTests: MPIProcessTestCase {
    func testAJobThatKeepsWritingRunsPastTheStallLimit() throws {
        // 3 s of output, a line every 0.3 s, under a 1.5 s stall limit: slow, not hung.
        let run = try run("/bin/sh", ["-c", "for i in 1 2 3 4 5 6 7 8 9 10; do echo step $i; sleep 0.3; done"], stallLimit: 1.5)
        XCTAssertFalse(run.stalled)
        XCTAssertEqual(run.status, 0)
        XCTAssertGreaterThan(run.seconds, 1.5, "it ran longer than the stall limit")
        XCTAssertEqual(run.output.split(separator: "\n").last, "step 10")
    }

    func testAJobThatWritesNothingIsEndedAfterTheStallLimit() throws {
        let run = try run("/bin/sh", ["-c", "echo started; exec sleep 60"], stallLimit: 1, reportStall: false)
        XCTAssertTrue(run.stalled)
        XCTAssertNotEqual(run.status, 0)
        XCTAssertLessThan(run.seconds, 30, "ended long before its own end")
        XCTAssertEqual(run.output, "started\n")
    }

    func testAGrowingProgressFileCountsAsProgress() throws {
        let file = temporaryPath("progress-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let run = try run("/bin/sh", ["-c", "for i in 1 2 3 4 5 6 7 8; do echo $i >> '\(file)'; sleep 0.3; done"],
                          progress: [file], stallLimit: 1.5)
        XCTAssertFalse(run.stalled)
        XCTAssertEqual(run.status, 0)
    }
}
