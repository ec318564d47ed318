import Foundation
import XCTest

/// A new, empty folder `<system temp>/<prefix>-<UUID>`; the caller removes it
/// (`removeTemporaryFolder`). Tests that run inside an `XCTestCase` use `temporaryFolder(_:)`,
/// which removes it after the test on its own.
public func makeTemporaryFolder(_ prefix: String) throws -> String {
    let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Removes a folder made by `makeTemporaryFolder` with everything in it; a missing folder is fine.
public func removeTemporaryFolder(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

extension XCTestCase {
    /// A new, empty folder `<system temp>/<prefix>-<UUID>` that is removed when the current test ends.
    public func temporaryFolder(_ prefix: String) throws -> String {
        let path = try makeTemporaryFolder(prefix)
        addTeardownBlock { removeTemporaryFolder(path) }
        return path
    }

    /// `temporaryFolder(_:)` as a file URL.
    public func temporaryFolderURL(_ prefix: String) throws -> URL {
        URL(fileURLWithPath: try temporaryFolder(prefix), isDirectory: true)
    }
}
