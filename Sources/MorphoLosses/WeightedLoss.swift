import MorphoTensor

/// One named term of a `WeightedLoss`: a loss of the training batch and its weight schedule.
/// `Input` is whatever the trainer hands to the loss (a batch of predictions and targets).
public struct LossTerm<Input> {
    public var name: String
    public var weight: any WeightSchedule
    public var evaluate: (Input) -> Tensor

    public init(_ name: String, weight: any WeightSchedule = ConstantWeight(1), _ evaluate: @escaping (Input) -> Tensor) {
        self.name = name
        self.weight = weight
        self.evaluate = evaluate
    }
}

/// The value of one term at one step, for logging.
public struct LossTermValue: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    /// The term's weight at this epoch.
    public var weight: Double
    /// The unweighted loss value.
    public var value: Float
    /// `weight · value`, the term's contribution to the total.
    public var weighted: Double { weight * Double(value) }
    public var description: String { "\(name) \(value) ×\(weight)" }
}

/// The result of evaluating a `WeightedLoss`: the differentiable total and every term's value.
public struct WeightedLossValue {
    /// Σ_t w_t(epoch) · L_t, a 0-d tensor to call `backward()` on.
    public var total: Tensor
    public var terms: [LossTermValue]

    public init(total: Tensor, terms: [LossTermValue] = []) {
        self.total = total
        self.terms = terms
    }

    /// The term named `name`, if any.
    public subscript(name: String) -> LossTermValue? { terms.first { $0.name == name } }
}

/// A weighted sum of named loss terms with per-term weight schedules:
///
///     L(epoch) = Σ_t w_t(epoch) · L_t(input)
///
/// Training configs build one (Dice + boundary under a rebalance schedule, NCC + λ·Grad for
/// registration, …) and log each term's value. A term whose weight is 0 at an epoch is still
/// evaluated for the log, but without recording gradients, and adds nothing to the total.
public struct WeightedLoss<Input> {
    public private(set) var terms: [LossTerm<Input>]

    /// Fails with `LossError.duplicateTerm` if two terms share a name (their logs would collide).
    public init(_ terms: [LossTerm<Input>]) throws {
        var seen = Set<String>()
        for t in terms where !seen.insert(t.name).inserted { throw LossError.duplicateTerm(name: t.name) }
        precondition(!terms.isEmpty, "WeightedLoss needs at least one term")
        self.terms = terms
    }

    /// The regional + boundary combination of seed 004 under `schedule`.
    public static func regionalBoundary(
        regional: (name: String, loss: (Input) -> Tensor), boundary: (name: String, loss: (Input) -> Tensor),
        schedule: AlphaSchedule
    ) throws -> WeightedLoss<Input> {
        try WeightedLoss([
            LossTerm(regional.name, weight: schedule.regionalWeight, regional.loss),
            LossTerm(boundary.name, weight: schedule.boundaryWeight, boundary.loss),
        ])
    }

    public func callAsFunction(_ input: Input, epoch: Int) -> WeightedLossValue {
        var total: Tensor?
        var values: [LossTermValue] = []
        for term in terms {
            let w = term.weight.weight(epoch: epoch)
            if w == 0 {
                let v = withoutGradients { term.evaluate(input) }
                values.append(LossTermValue(name: term.name, weight: w, value: v.item))
                continue
            }
            let v = term.evaluate(input)
            values.append(LossTermValue(name: term.name, weight: w, value: v.item))
            let contribution = w == 1 ? v : v * Float(w)
            total = total.map { $0 + contribution } ?? contribution
        }
        return WeightedLossValue(total: total ?? Tensor(scalar: 0), terms: values)
    }
}
