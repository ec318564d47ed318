import Foundation

/// Files of this repository that tests read, found from this file's place in it
/// (`Tests/MorphoTestSupport/`), so test files can move between folders without counting `..`.
public enum Repository {
    /// The package root: the folder holding Package.swift.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The folder of the shipped run configs, `Configs/`.
    public static var configs: String { root.appendingPathComponent("Configs").path }

    /// The shipped run config `Configs/<name>`.
    public static func config(_ name: String) -> String { root.appendingPathComponent("Configs/\(name)").path }
}
