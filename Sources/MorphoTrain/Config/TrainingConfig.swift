import MorphoNN

public enum OptimizerKind: String, CaseIterable, Sendable { case adam, adamw, sgd }

/// `training:`.
public struct TrainingConfig: Equatable, Sendable {
    public var epochs: Int
    public var stepsPerEpoch: Int
    public var batchSize: Int
    public var optimizer: OptimizerConfig
    public var lrSchedule: LRScheduleConfig
    /// Maximum global gradient norm (0 = no clipping).
    public var gradClip: Double
    /// Validate after every N epochs (and after the last one).
    public var validateEvery: Int
    /// Stop after this many validations without a better mean Dice (0 = never).
    public var patience: Int
    /// Seed of the weight initialisation.
    public var seed: UInt64

    init(_ s: ConfigSection) throws {
        epochs = try s.int("epochs", default: 50, min: 1, max: ConfigBounds.epochs)
        stepsPerEpoch = try s.int("steps_per_epoch", default: 50, min: 1, max: ConfigBounds.stepsPerEpoch)
        batchSize = try s.int("batch_size", default: 4, min: 1, max: ConfigBounds.batchSize)
        optimizer = try OptimizerConfig(try s.section("optimizer"))
        lrSchedule = try LRScheduleConfig(try s.section("lr_schedule"))
        gradClip = try s.double("grad_clip", default: 10, range: 0...1e9)
        validateEvery = try s.int("validate_every", default: 1, min: 1)
        patience = try s.section("early_stopping").readPatience()
        seed = UInt64(try s.int("seed", default: 0, min: 0))
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("epochs", .int(epochs)), ("steps_per_epoch", .int(stepsPerEpoch)), ("batch_size", .int(batchSize)),
            ("optimizer", optimizer.resolved), ("lr_schedule", lrSchedule.resolved), ("grad_clip", .number(gradClip)),
            ("validate_every", .int(validateEvery)), ("early_stopping", .map([("patience", .int(patience))])),
            ("seed", .int(Int(seed))),
        ])
    }
}

private extension ConfigSection {
    func readPatience() throws -> Int {
        let p = try int("patience", default: 0, min: 0)
        try finish()
        return p
    }
}

/// `training.optimizer:`.
public struct OptimizerConfig: Equatable, Sendable {
    public var kind: OptimizerKind
    public var lr: Double
    public var weightDecay: Double
    /// SGD momentum (Nesterov off); Adam's β1 and β2 are `betas`.
    public var momentum: Double
    public var betas: [Double]

    init(_ s: ConfigSection) throws {
        kind = try s.choice("kind", default: .adam)
        lr = try s.double("lr", default: 1e-3, range: 1e-12...10)
        weightDecay = try s.double("weight_decay", default: kind == .adamw ? 1e-2 : 0, range: 0...10)
        momentum = try s.double("momentum", default: 0.9, range: 0...0.999999)
        betas = try s.doubles("betas") ?? [0.9, 0.999]
        guard betas.count == 2, betas.allSatisfy({ (0..<1).contains($0) }) else {
            throw s.error("betas", "expected two numbers in [0, 1)")
        }
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("kind", .string(kind.rawValue)), ("lr", .number(lr)), ("weight_decay", .number(weightDecay)),
            ("momentum", .number(momentum)), ("betas", .numbers(betas)),
        ])
    }
}

/// `training.lr_schedule:` — the learning rate per epoch e of E (0-based), after `warmup_epochs`
/// of linear warm-up: poly `lr·(1 − e/E)^power`, cosine `min_lr + (lr − min_lr)·(1 + cos(π e/E))/2`,
/// step `lr·gamma^⌊e/step_size⌋`, constant `lr` (MorphoNN's `LearningRateSchedule`).
public struct LRScheduleConfig: Equatable, Sendable {
    public var kind: LearningRateSchedule.Kind
    public var power: Double
    public var stepSize: Int
    public var gamma: Double
    public var minLR: Double
    public var warmupEpochs: Int

    init(_ s: ConfigSection) throws {
        kind = try s.choice("kind", default: .poly)
        power = try s.double("power", default: 0.9, range: 0...10)
        stepSize = try s.int("step_size", default: 10, min: 1)
        gamma = try s.double("gamma", default: 0.5, range: 0...1)
        minLR = try s.double("min_lr", default: 0, range: 0...10)
        warmupEpochs = try s.int("warmup_epochs", default: 0, min: 0)
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("kind", .string(kind.rawValue)), ("power", .number(power)), ("step_size", .int(stepSize)),
            ("gamma", .number(gamma)), ("min_lr", .number(minLR)), ("warmup_epochs", .int(warmupEpochs)),
        ])
    }

    /// MorphoNN's schedule over `epochs` epochs (the unit of `step` is the epoch).
    public func schedule(epochs: Int) -> LearningRateSchedule {
        switch kind {
        case .constant: return .constant
        case .poly: return .poly(power: Float(power), total: epochs)
        case .cosine: return .cosine(total: epochs, minimum: Float(minLR))
        case .step: return .step(every: stepSize, gamma: Float(gamma))
        }
    }

    /// Learning rate for `epoch` (0-based) of `epochs`, starting from `base`: linear warm-up
    /// `base·(e + 1)/(warmup_epochs + 1)` for the first `warmup_epochs`, then the schedule.
    public func rate(base: Double, epoch: Int, epochs: Int) -> Double {
        if warmupEpochs > 0 && epoch < warmupEpochs { return base * Double(epoch + 1) / Double(warmupEpochs + 1) }
        return Double(schedule(epochs: epochs).learningRate(base: Float(base), step: epoch))
    }
}
