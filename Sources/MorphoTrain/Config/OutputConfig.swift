/// `output:`.
public struct OutputConfig: Equatable, Sendable {
    /// The run folder (default `runs/<name>`).
    public var dir: String
    /// Draw `curves.png` and `overlay.png` after each validation.
    public var plots: Bool

    init(_ s: ConfigSection, name: String) throws {
        dir = try s.string("dir", default: "runs/\(name)")
        plots = try s.bool("plots", default: true)
        try s.finish()
    }

    var resolved: ConfigValue { .map([("dir", .string(dir)), ("plots", .bool(plots))]) }
}
