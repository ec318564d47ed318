import MorphoTensor

/// Which normalisation a block applies after its convolution.
public enum NormKind: Sendable, Equatable {
    case none
    /// Per sample and channel over space; `affine` adds a trainable scale and shift per channel
    /// (MONAI's `Norm.INSTANCE` has none).
    case instance(affine: Bool)
    /// Per channel over batch and space, with running statistics for evaluation (momentum 0.1).
    case batch

    public static var instance: NormKind { .instance(affine: false) }
}

extension NormKind {
    /// A normalisation by the name configs write (`model.unet.norm`); `instance` has no affine.
    public enum Name: String, CaseIterable, Sendable { case instance, batch, none }

    /// The normalisation `name` stands for.
    public init(_ name: Name) {
        switch name {
        case .instance: self = .instance
        case .batch: self = .batch
        case .none: self = .none
        }
    }
}

/// A normalisation layer over `[N, C, spatial...]` for `channels` channels.
public final class Norm: Module {
    public let kind: NormKind
    public let channels: Int
    public let eps: Float
    public let momentum: Float
    /// Scale γ `[C]` (ones at start); nil without affine.
    public let weight: Parameter?
    /// Shift β `[C]` (zeros at start); nil without affine.
    public let bias: Parameter?
    /// Batch norm's running mean and (unbiased) variance `[C]`, saved in checkpoints, not trained.
    public let runningMean: Parameter?
    public let runningVar: Parameter?
    /// Batch statistics (true) or running statistics (false); see `Module.setTraining`.
    public private(set) var isTraining = true

    public init(_ kind: NormKind, channels: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        self.kind = kind
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
        let affine: Bool
        switch kind {
        case .none: affine = false
        case .instance(let a): affine = a
        case .batch: affine = true
        }
        weight = affine ? Parameter(.ones([channels])) : nil
        bias = affine ? Parameter(.zeros([channels])) : nil
        let tracked = kind == .batch
        runningMean = tracked ? Parameter(.zeros([channels]), trainable: false) : nil
        runningVar = tracked ? Parameter(.ones([channels]), trainable: false) : nil
    }

    public var localParameters: [(String, Parameter)] {
        [("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVar)]
            .compactMap { name, p in p.map { (name, $0) } }
    }

    public func setTrainingSelf(_ training: Bool) { isTraining = training }

    /// Normalises `x` and applies `activation`, fused into one pass when it rectifies.
    public func callAsFunction(_ x: Tensor, activation: Activation? = nil) -> Tensor {
        guard let activation else { return normalized(x, Rectifier.none) }
        guard let rectifier = activation.rectifier else { return activation(normalized(x, Rectifier.none)) }
        return normalized(x, rectifier)
    }

    func normalized(_ x: Tensor, _ rectifier: Rectifier) -> Tensor {
        switch kind {
        case .none:
            switch rectifier {
            case .none: return x
            case .leaky(let s): return x.leakyRelu(s)
            case .learned(let a): return prelu(x, slope: a)
            }
        case .instance:
            return instanceNorm(x, weight: weight?.value, bias: bias?.value, eps: eps, rectifier: rectifier)
        case .batch:
            return batchNorm(x, weight: weight?.value, bias: bias?.value, runningMean: &runningMean!.value,
                             runningVar: &runningVar!.value, training: isTraining, momentum: momentum, eps: eps,
                             rectifier: rectifier)
        }
    }
}
