import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a trainer reports: a redrawn progress bar with loss and ETA on a terminal, plain
/// lines (one per epoch) otherwise, nothing when quiet.
public final class ProgressReporter: @unchecked Sendable {
    public enum Style: Sendable { case bar, lines, quiet }

    public let style: Style
    private var lastDraw = 0.0
    private let write: (String) -> Void

    /// A bar when standard output is a terminal (`isatty`), plain lines otherwise.
    public static func automatic() -> ProgressReporter {
        ProgressReporter(style: isatty(STDOUT_FILENO) != 0 ? .bar : .lines)
    }

    public init(style: Style, write: @escaping (String) -> Void = { s in
        FileHandle.standardOutput.write(Data(s.utf8))
    }) {
        self.style = style
        self.write = write
    }

    /// Called after each step; redraws the bar at most ~10 times a second.
    public func step(epoch: Int, epochs: Int, step: Int, steps: Int, loss: Double, elapsed: Double, remaining: Double) {
        guard style == .bar else { return }
        let now = Date().timeIntervalSinceReferenceDate
        guard step == steps || now - lastDraw > 0.1 else { return }
        lastDraw = now
        let width = 24
        let filled = Int(Double(width) * Double(step) / Double(max(steps, 1)))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        write("\r\u{1B}[2Kepoch \(epoch)/\(epochs) \(bar) \(step)/\(steps)  loss \(Self.format(loss))  eta \(Self.duration(remaining))")
    }

    /// Called after each epoch with its summary line.
    public func epochDone(_ line: String) {
        switch style {
        case .bar: write("\r\u{1B}[2K" + line + "\n")
        case .lines: write(line + "\n")
        case .quiet: break
        }
    }

    /// A message outside the per-epoch rhythm (resuming, early stop, where outputs are).
    public func note(_ line: String) {
        guard style != .quiet else { return }
        write((style == .bar ? "\r\u{1B}[2K" : "") + line + "\n")
    }

    static func format(_ v: Double) -> String { v.isFinite ? String(format: "%.4f", v) : "\(v)" }

    /// `m:ss` or `h:mm:ss`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
