import MorphoKernels
import MorphoTensor

/// The pointwise non-linearities a block can end with.
public enum ActivationKind: Sendable, Equatable {
    case identity
    case relu
    /// max(x, s·x); VoxelMorph uses s = 0.2.
    case leakyRelu(Float)
    /// PReLU with one trainable slope shared by all channels, initialised to 0.25 (MONAI's default).
    case prelu
    case sigmoid
    case tanh
}

extension ActivationKind {
    /// A non-linearity by the name configs write (`model.unet.activation`).
    public enum Name: String, CaseIterable, Sendable { case identity, relu, leaky_relu, prelu, sigmoid, tanh }

    /// The non-linearity `name` stands for; `leaky_relu` takes `leakySlope` (0.01, PyTorch's and
    /// MONAI's default).
    public init(_ name: Name, leakySlope: Float = 0.01) {
        switch name {
        case .identity: self = .identity
        case .relu: self = .relu
        case .leaky_relu: self = .leakyRelu(leakySlope)
        case .prelu: self = .prelu
        case .sigmoid: self = .sigmoid
        case .tanh: self = .tanh
        }
    }
}

/// A non-linearity as a layer (it owns the PReLU slope). After a normalisation the rectifying
/// kinds are fused into it (`Norm.callAsFunction(_:activation:)`), so no pre-activation tensor
/// is stored.
public final class Activation: Module {
    public let kind: ActivationKind
    /// The PReLU slope `[1]`; nil for the other kinds.
    public let slope: Parameter?

    public init(_ kind: ActivationKind) {
        self.kind = kind
        slope = kind == .prelu ? Parameter(Tensor(shape: [1], data: [0.25])) : nil
    }

    public var localParameters: [(String, Parameter)] { slope.map { [("slope", $0)] } ?? [] }

    /// The fusable form of this activation, nil for sigmoid and tanh.
    public var rectifier: Rectifier? {
        switch kind {
        case .identity: .none
        case .relu: .relu
        case .leakyRelu(let s): .leaky(s)
        case .prelu: .learned(slope!.value)
        case .sigmoid, .tanh: nil
        }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch kind {
        case .identity: x
        case .relu: x.relu()
        case .leakyRelu(let s): x.leakyRelu(s)
        case .prelu: prelu(x, slope: slope!.value)
        case .sigmoid: x.sigmoid()
        case .tanh: x.tanh()
        }
    }
}

/// y = x for x > 0 and a·x otherwise, with one trainable slope `a` (`[1]`) for the whole tensor.
/// Backward: dx = g·(x > 0 ? 1 : a), da = Σ_{x ≤ 0} g·x.
public func prelu(_ x: Tensor, slope: Tensor) -> Tensor {
    precondition(slope.count == 1, "prelu takes one shared slope, got \(slope.shape)")
    let a = slope.item
    let px = x.storage.pointer
    let y = Tensor(shape: x.shape) { out in
        Parallel.forRanges(x.count) { r in for i in r { out[i] = px[i] > 0 ? px[i] : a * px[i] } }
    }
    return Tensor.record(y, inputs: [x, slope]) { g in
        let pg = g.storage.pointer
        let dx = x.requiresGrad ? Tensor(shape: x.shape) { out in
            Parallel.forRanges(x.count) { r in for i in r { out[i] = px[i] > 0 ? pg[i] : a * pg[i] } }
        } : nil
        var da = 0.0
        if slope.requiresGrad { for i in 0..<x.count where px[i] <= 0 { da += Double(pg[i] * px[i]) } }
        return [dx, slope.requiresGrad ? Tensor(shape: slope.shape, data: [Float(da)]) : nil]
    }
}
