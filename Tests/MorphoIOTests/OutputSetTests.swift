import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// `OutputSet`: after a failed command, the outputs it wrote are removed and the files it did not
/// reach are left as they were.
final class OutputSetTests: XCTestCase {
    func testRemovesWhatTheRunWroteAndKeepsWhatItDidNotReach() throws {
        let folder = try temporaryFolder("output-set")
        let (rewritten, untouched, created) = (folder + "/a.nii", folder + "/b.nii", folder + "/c.nii")
        try writeBytes([1], to: rewritten)
        try writeBytes([2], to: untouched)
        let outputs = OutputSet([rewritten, untouched, created, folder + "/never.nii"])
        // Writers rename a new file into place, as FileChecks.atomicWrite does.
        try writeBytes([3], to: folder + "/.a.tmp")
        XCTAssertEqual(rename(folder + "/.a.tmp", rewritten), 0)
        try writeBytes([4], to: created)
        XCTAssertEqual(Set(outputs.removeWritten()), [rewritten, created])
        XCTAssertFalse(FileManager.default.fileExists(atPath: rewritten))
        XCTAssertFalse(FileManager.default.fileExists(atPath: created))
        XCTAssertEqual(try readBytes(untouched), [2])
    }

    func testStaleTemporaryFilesOfOtherProcessesAreListedButNotOthers() throws {
        let folder = try temporaryFolder("stale-temporaries")
        let names = [".last.safetensors.tmp-999999-abc", ".x.nii.gz.tmp-\(getpid())-q.nii.gz", "notes.tmp", ".hidden"]
        for name in names { try writeBytes([0], to: "\(folder)/\(name)") }
        XCTAssertEqual(StaleTemporaryFiles.list(in: folder), ["\(folder)/.last.safetensors.tmp-999999-abc"])
        XCTAssertEqual(StaleTemporaryFiles.remove(in: folder), ["\(folder)/.last.safetensors.tmp-999999-abc"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).count, 3)
    }
}
