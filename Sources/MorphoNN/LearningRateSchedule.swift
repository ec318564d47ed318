import Foundation

/// How the learning rate moves over training steps (or epochs: the unit is whatever the caller
/// counts). `learningRate(base:step:)` is a pure function, so a resumed run gets the same rate.
public enum LearningRateSchedule: Sendable, Equatable {
    /// lr = base.
    case constant
    /// lr = base·(1 − t/total)^power, 0 from `total` on (nnU-Net's poly, power 0.9; PyTorch `PolynomialLR`).
    case poly(power: Float, total: Int)
    /// lr = minimum + (base − minimum)·(1 + cos(π·t/total))/2, `minimum` from `total` on
    /// (PyTorch `CosineAnnealingLR` without restarts).
    case cosine(total: Int, minimum: Float)
    /// lr = base·gamma^⌊t/every⌋ (PyTorch `StepLR`).
    case step(every: Int, gamma: Float)

    public func learningRate(base: Float, step t: Int) -> Float {
        let t = max(t, 0)
        switch self {
        case .constant:
            return base
        case .poly(let power, let total):
            guard total > 0, t < total else { return 0 }
            return base * Float(pow(1 - Double(t) / Double(total), Double(power)))
        case .cosine(let total, let minimum):
            guard total > 0, t < total else { return minimum }
            return minimum + (base - minimum) * Float((1 + cos(Double.pi * Double(t) / Double(total))) / 2)
        case .step(let every, let gamma):
            return base * Float(pow(Double(gamma), Double(t / max(every, 1))))
        }
    }
}

extension LearningRateSchedule {
    /// A schedule by the name configs write (`training.lr_schedule.kind`), without its parameters.
    public enum Kind: String, CaseIterable, Sendable { case poly, cosine, step, constant }

    public var kind: Kind {
        switch self {
        case .constant: .constant
        case .poly: .poly
        case .cosine: .cosine
        case .step: .step
        }
    }
}
