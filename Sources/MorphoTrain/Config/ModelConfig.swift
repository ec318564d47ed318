import MorphoNN

public enum NormChoice: String, CaseIterable, Sendable { case instance, batch, none }
public enum ActivationChoice: String, CaseIterable, Sendable { case prelu, leaky_relu, relu }

/// `model:`.
public struct ModelConfig: Equatable, Sendable {
    public var kind: TaskKind
    public var unet: UNetConfig

    init(_ s: ConfigSection) throws {
        kind = try s.choice("kind", default: .segmentation)
        unet = try UNetConfig(try s.section("unet"))
        try s.finish()
    }

    var resolved: ConfigValue { .map([("kind", .string(kind.rawValue)), ("unet", unet.resolved)]) }
}

/// `model.unet:` — a U-Net with `channels.count` levels; level `i+1` is downsampled by
/// `strides[i]` along every spatial axis.
public struct UNetConfig: Equatable, Sendable {
    /// 2 (slices, `[N, C, H, W]`) or 3 (volumes, `[N, C, D, H, W]`).
    public var dims: Int
    /// Feature channels per level, e.g. `[16, 32, 64, 128]`.
    public var channels: [Int]
    /// Downsampling factor between consecutive levels (`channels.count - 1` entries).
    public var strides: [Int]
    public var norm: NormChoice
    public var activation: ActivationChoice
    /// Output classes including background (≥ 2).
    public var classes: Int

    /// Input sizes must be multiples of this (the product of the strides).
    public var sizeMultiple: Int { strides.reduce(1, *) }

    public init(dims: Int, channels: [Int], strides: [Int], norm: NormChoice, activation: ActivationChoice, classes: Int) {
        self.dims = dims
        self.channels = channels
        self.strides = strides
        self.norm = norm
        self.activation = activation
        self.classes = classes
    }

    init(_ s: ConfigSection) throws {
        dims = try s.int("dims", default: 2)
        guard dims == 2 || dims == 3 else { throw s.error("dims", "must be 2 or 3, got \(dims)") }
        channels = try s.ints("channels") ?? [16, 32, 64, 128]
        guard !channels.isEmpty, channels.allSatisfy({ $0 > 0 }) else {
            throw s.error("channels", "expected a list of positive channel counts")
        }
        strides = try s.ints("strides") ?? Array(repeating: 2, count: channels.count - 1)
        guard strides.count == channels.count - 1 else {
            throw s.error("strides", "needs \(channels.count - 1) entries (one fewer than channels), got \(strides.count)")
        }
        guard strides.allSatisfy({ $0 >= 1 }) else { throw s.error("strides", "entries must be at least 1") }
        norm = try s.choice("norm", default: .instance)
        activation = try s.choice("activation", default: .leaky_relu)
        classes = try s.int("classes", default: 2, min: 2)
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("dims", .int(dims)), ("channels", .ints(channels)), ("strides", .ints(strides)),
            ("norm", .string(norm.rawValue)), ("activation", .string(activation.rawValue)), ("classes", .int(classes)),
        ])
    }
}
