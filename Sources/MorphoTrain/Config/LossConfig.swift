import MorphoLosses

public enum RegionalLossKind: String, CaseIterable, Sendable { case dice, ce, balanced_ce, dice_ce }

/// `loss:` — `(1 − α)·regional + α·boundary (+ prl.weight · PRL)`, with α from `schedule`.
public struct LossConfig: Equatable, Sendable {
    public var regional: RegionalLossKind
    /// Dice terms include the background class.
    public var includeBackground: Bool
    /// Boundary (surface) loss on signed distance maps of the classes `idc`.
    public var boundary: Bool
    public var idc: [Int]
    /// Weight λ of the physical regularisation loss (0 = off) and its edge threshold K (seed 000;
    /// the inputs are probabilities, so K is of order 0.1–1 rather than the seed's 20 for 0–255).
    public var prlWeight: Double
    public var prlK: Double
    public var schedule: AlphaScheduleConfig

    init(_ s: ConfigSection, classes: Int) throws {
        regional = try s.choice("regional", default: .dice_ce)
        includeBackground = try s.bool("include_background", default: true)
        let b = try s.section("boundary")
        boundary = try b.bool("enabled", default: true)
        idc = try b.ints("idc") ?? Array(1..<classes)
        for (i, c) in idc.enumerated() where !(0..<classes).contains(c) {
            throw MorphoTrainError.config(file: s.file, key: "\(b.keyPath("idc"))[\(i)]", message: "class \(c) is not in 0..<\(classes)")
        }
        try b.finish()
        let p = try s.section("prl")
        prlWeight = try p.double("weight", default: 0, range: 0...1000)
        prlK = try p.double("K", default: 0.5, range: 1e-6...1e6)
        try p.finish()
        schedule = try AlphaScheduleConfig(try s.section("schedule"))
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("regional", .string(regional.rawValue)), ("include_background", .bool(includeBackground)),
            ("boundary", .map([("enabled", .bool(boundary)), ("idc", .ints(idc))])),
            ("prl", .map([("weight", .number(prlWeight)), ("K", .number(prlK))])),
            ("schedule", schedule.resolved),
        ])
    }
}

/// `loss.schedule:` — per epoch e, α_e = min(cap, α0 + e·Δ); `rebalance` weights the regional term
/// by max(floor, 1 − α_e) (the boundary-loss authors' recipe), `increase` by 1, `constant` keeps
/// (1, α0). MorphoLosses' `AlphaSchedule` evaluates it.
public struct AlphaScheduleConfig: Equatable, Sendable {
    public var kind: AlphaSchedule.Kind
    public var alpha0: Double
    public var delta: Double
    public var floor: Double
    /// Upper bound of α (nil: none).
    public var cap: Double?

    init(_ s: ConfigSection) throws {
        kind = try s.choice("kind", default: .rebalance)
        alpha0 = try s.double("alpha0", default: 0.01, range: 0...1)
        delta = try s.double("delta", default: 0.01, range: 0...1)
        floor = try s.double("floor", default: 0.1, range: 0...1)
        cap = try s.double("cap")
        if let cap, !(0...1).contains(cap) { throw s.error("cap", "must be in 0...1, got \(cap)") }
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("kind", .string(kind.rawValue)), ("alpha0", .number(alpha0)), ("delta", .number(delta)),
            ("floor", .number(floor)), ("cap", .optional(cap)),
        ])
    }

    /// The schedule object the loss uses.
    public var alphaSchedule: AlphaSchedule {
        AlphaSchedule(kind: kind, alpha0: alpha0, delta: delta, floor: floor, cap: cap)
    }
}
