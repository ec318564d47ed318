/// A loss weight as a function of the training epoch (0-based). Evaluated in Double so that
/// α0 + e·Δ accumulates no Float rounding over hundreds of epochs.
public protocol WeightSchedule: Sendable, CustomStringConvertible {
    func weight(epoch: Int) -> Double
}

/// The same weight at every epoch.
public struct ConstantWeight: WeightSchedule {
    public var value: Double
    public init(_ value: Double) { self.value = value }
    public func weight(epoch: Int) -> Double { value }
    public var description: String { "\(value)" }
}

/// `min(start + epoch · step, cap)`: a weight growing linearly, optionally capped.
public struct LinearWeight: WeightSchedule {
    public var start: Double
    public var step: Double
    public var cap: Double?
    public init(start: Double, step: Double, cap: Double? = nil) {
        self.start = start
        self.step = step
        self.cap = cap
    }
    public func weight(epoch: Int) -> Double {
        let w = start + Double(epoch) * step
        return cap.map { Swift.min(w, $0) } ?? w
    }
    public var description: String { "\(start) + \(step)·epoch" + (cap.map { " (cap \($0))" } ?? "") }
}

/// `max(floor, 1 − α(epoch))`: the regional weight of the rebalance strategy.
public struct ComplementWeight: WeightSchedule {
    public var alpha: LinearWeight
    public var floor: Double
    public init(of alpha: LinearWeight, floor: Double) {
        self.alpha = alpha
        self.floor = floor
    }
    public func weight(epoch: Int) -> Double { Swift.max(floor, 1 - alpha.weight(epoch: epoch)) }
    public var description: String { "max(\(floor), 1 − (\(alpha)))" }
}

/// `a(epoch) · b(epoch)`: one schedule scaled by another (a term's own weight times the
/// regional or boundary weight of the rebalance schedule it shares with other terms).
public struct ProductWeight: WeightSchedule {
    public var a: any WeightSchedule
    public var b: any WeightSchedule
    public init(_ a: any WeightSchedule, _ b: any WeightSchedule) {
        self.a = a
        self.b = b
    }
    public func weight(epoch: Int) -> Double { a.weight(epoch: epoch) * b.weight(epoch: epoch) }
    public var description: String { "(\(a)) · (\(b))" }
}

/// The three ways seed 004 (Kervadec et al., boundary loss) combines a regional loss L_R with the
/// boundary loss L_B, as `w_R(e)·L_R + w_B(e)·L_B` with α_e = α0 + e·Δ (min cap) at epoch e:
///
/// | kind | (w_R, w_B) |
/// |---|---|
/// | constant  | (1, α0) — Δ is ignored |
/// | increase  | (1, α_e) |
/// | rebalance | (max(floor, 1 − α_e), α_e) — the paper's (1 − α)·L_R + α·L_B |
///
/// The floor (default 0.1) keeps the regional loss alive once α passes 1, as the authors'
/// scheduler does; the paper's experiments use rebalance with α0 = Δ = 0.01.
public struct AlphaSchedule: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        case constant, increase, rebalance
    }

    public var kind: Kind
    public var alpha0: Double
    public var delta: Double
    public var floor: Double
    public var cap: Double?

    public init(kind: Kind, alpha0: Double, delta: Double = 0, floor: Double = 0.1, cap: Double? = nil) {
        self.kind = kind
        self.alpha0 = alpha0
        self.delta = delta
        self.floor = floor
        self.cap = cap
    }

    /// From a config: `kind` is one of constant, increase, rebalance; `key` names the config
    /// entry in the error.
    public init(kind: String, alpha0: Double, delta: Double = 0, floor: Double = 0.1, cap: Double? = nil, key: String = "alpha_schedule.kind") throws {
        guard let k = Kind(rawValue: kind) else { throw LossError.unknownScheduleKind(key: key, value: kind) }
        guard floor.isFinite, alpha0.isFinite, delta.isFinite else {
            throw LossError.invalidParameter(key: key, reason: "alpha0, delta and floor must be finite")
        }
        self.init(kind: k, alpha0: alpha0, delta: delta, floor: floor, cap: cap)
    }

    /// The paper's schedule: rebalance, α0 = Δ = 0.01.
    public static let paperDefault = AlphaSchedule.rebalance(alpha0: 0.01, delta: 0.01)

    /// (1, α) at every epoch.
    public static func constant(alpha: Double) -> AlphaSchedule { AlphaSchedule(kind: .constant, alpha0: alpha) }

    /// (1, α0 + e·Δ), α capped at `cap` if given.
    public static func increase(alpha0: Double, delta: Double, cap: Double? = nil) -> AlphaSchedule {
        AlphaSchedule(kind: .increase, alpha0: alpha0, delta: delta, cap: cap)
    }

    /// (max(floor, 1 − α_e), α_e) with α_e = α0 + e·Δ, capped at `cap` if given.
    public static func rebalance(alpha0: Double, delta: Double, floor: Double = 0.1, cap: Double? = nil) -> AlphaSchedule {
        AlphaSchedule(kind: .rebalance, alpha0: alpha0, delta: delta, floor: floor, cap: cap)
    }

    /// α at `epoch` (0-based): α0 for constant, α0 + e·Δ (min cap) otherwise.
    public func alpha(epoch: Int) -> Double { boundaryWeight.weight(epoch: epoch) }

    /// The weight of the boundary term.
    public var boundaryWeight: any WeightSchedule {
        kind == .constant ? ConstantWeight(alpha0) as any WeightSchedule : LinearWeight(start: alpha0, step: delta, cap: cap)
    }

    /// The weight of the regional term.
    public var regionalWeight: any WeightSchedule {
        kind == .rebalance ? ComplementWeight(of: LinearWeight(start: alpha0, step: delta, cap: cap), floor: floor) as any WeightSchedule
            : ConstantWeight(1)
    }

    /// (regional, boundary) weights at `epoch`.
    public func weights(epoch: Int) -> (regional: Double, boundary: Double) {
        (regionalWeight.weight(epoch: epoch), boundaryWeight.weight(epoch: epoch))
    }

    public var description: String {
        "\(kind.rawValue)(α0 \(alpha0), Δ \(delta), floor \(floor)\(cap.map { ", cap \($0)" } ?? ""))"
    }
}
