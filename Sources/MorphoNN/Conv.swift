import Foundation
import MorphoTensor

/// How a convolution's weights and bias are drawn at construction (seeded, reproducible).
/// `fanIn` is input channels × kernel volume (PyTorch's rule, also for transposed layers,
/// whose weight `[Cin, Cout, k...]` gives Cout × kernel volume).
public enum WeightInitializer: Sendable, Equatable {
    /// PyTorch's default for `Conv*d`: kaiming-uniform with a = √5, i.e. weight and bias
    /// U(−1/√fanIn, 1/√fanIn).
    case pytorchDefault
    /// He et al. 2015 for ReLU networks: weight U(−√(6/fanIn), √(6/fanIn)), bias 0.
    case kaimingUniform
    /// He et al. 2015: weight N(0, 2/fanIn), bias 0.
    case kaimingNormal
    /// Weight N(0, std²), bias 0: VoxelMorph's flow head uses std 1e-5, so training starts
    /// from an almost zero displacement.
    case normal(std: Float)

    /// A convolution's weight `[channels.0, channels.1, k...]` and optional bias `[bias]`,
    /// with fanIn = fanInChannels · k^spatialRank.
    func parameters(spatialRank: Int, channels: (Int, Int), kernel: Int, fanInChannels: Int, bias: Int?,
                    using rng: inout RandomGenerator) -> (Parameter, Parameter?) {
        precondition(spatialRank == 2 || spatialRank == 3, "convolutions are 2D or 3D, not \(spatialRank)D")
        let shape = [channels.0, channels.1] + Array(repeating: kernel, count: spatialRank)
        let fanIn = fanInChannels * Int(pow(Double(kernel), Double(spatialRank)))
        let (w, b) = draw(weight: shape, fanIn: fanIn, bias: bias, using: &rng)
        return (Parameter(w), b.map { Parameter($0) })
    }

    func draw(weight shape: [Int], fanIn: Int, bias: Int?, using rng: inout RandomGenerator) -> (Tensor, Tensor?) {
        let f = Float(max(fanIn, 1))
        switch self {
        case .pytorchDefault:
            let bound = 1 / f.squareRoot()
            let w = Tensor.randomUniform(shape, low: -bound, high: bound, using: &rng)
            return (w, bias.map { Tensor.randomUniform([$0], low: -bound, high: bound, using: &rng) })
        case .kaimingUniform:
            let bound = (6 / f).squareRoot()
            return (Tensor.randomUniform(shape, low: -bound, high: bound, using: &rng), bias.map { .zeros([$0]) })
        case .kaimingNormal:
            return (Tensor.randomNormal(shape, std: (2 / f).squareRoot(), using: &rng), bias.map { .zeros([$0]) })
        case .normal(let std):
            return (Tensor.randomNormal(shape, std: std, using: &rng), bias.map { .zeros([$0]) })
        }
    }
}

/// A 2D or 3D convolution layer over `[N, Cin, spatial...]`: weight `[Cout, Cin, k...]`, bias
/// `[Cout]`, the same stride and zero padding on every axis (padding defaults to k/2, which
/// keeps the size at stride 1). See `conv(_:_:_:stride:padding:)`.
public final class Conv: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int
    public let padding: Int

    public init(spatialRank: Int, inChannels: Int, outChannels: Int, kernel: Int = 3, stride: Int = 1, padding: Int? = nil,
                bias: Bool = true, initializer: WeightInitializer = .pytorchDefault, rng: inout RandomGenerator) {
        (weight, self.bias) = initializer.parameters(spatialRank: spatialRank, channels: (outChannels, inChannels), kernel: kernel,
                                                     fanInChannels: inChannels, bias: bias ? outChannels : nil, using: &rng)
        self.stride = stride
        self.padding = padding ?? kernel / 2
    }

    public var localParameters: [(String, Parameter)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }

    /// The convolution of `x`, optionally followed by a fused leaky rectifier (slope ≥ 0).
    public func callAsFunction(_ x: Tensor, activation: Rectifier = .none) -> Tensor {
        self(parts: [x], activation: activation)
    }

    /// The convolution of the channel concatenation of `parts`, without building it (see `conv(parts:)`).
    public func callAsFunction(parts: [Tensor], activation: Rectifier = .none) -> Tensor {
        conv(parts: parts, weight.value, bias?.value, stride: stride, padding: padding, activation: activation)
    }

    /// The convolution of `coarse` up-sampled (nearest) onto `skip`'s grid, concatenated with
    /// `skip`, without keeping the up-sampled tensor (see `conv(upsampling:skip:)`).
    public func callAsFunction(upsampling coarse: Tensor, skip: Tensor, activation: Rectifier = .none) -> Tensor {
        conv(upsampling: coarse, skip: skip, weight.value, bias?.value, stride: stride, padding: padding, activation: activation)
    }
}

/// A 2D or 3D transposed convolution (learned up-sampling) over `[N, Cin, spatial...]`:
/// weight `[Cin, Cout, k...]` (PyTorch's layout), bias `[Cout]`. Kernel 3, stride 2, padding 1,
/// output padding 1 (MONAI's U-Net) or kernel 2, stride 2 both double the size.
public final class ConvTranspose: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int
    public let padding: Int
    public let outputPadding: Int

    public init(spatialRank: Int, inChannels: Int, outChannels: Int, kernel: Int = 3, stride: Int = 2, padding: Int? = nil,
                outputPadding: Int? = nil, bias: Bool = true, initializer: WeightInitializer = .pytorchDefault,
                rng: inout RandomGenerator) {
        (weight, self.bias) = initializer.parameters(spatialRank: spatialRank, channels: (inChannels, outChannels), kernel: kernel,
                                                     fanInChannels: outChannels, bias: bias ? outChannels : nil, using: &rng)
        self.stride = stride
        // Defaults that make the output exactly `stride` times the input (MONAI's rule).
        self.padding = padding ?? (kernel - 1) / 2
        self.outputPadding = outputPadding ?? max(0, stride - kernel + 2 * self.padding)
    }

    public var localParameters: [(String, Parameter)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }

    /// Up-samples `x`; `outputSize` (spatial) chooses the output padding per axis so the result
    /// matches a skip connection of odd size.
    public func callAsFunction(_ x: Tensor, outputSize: [Int]? = nil) -> Tensor {
        convTransposed(x, weight.value, bias?.value, stride: stride, padding: padding, outputPadding: outputPadding, outputSize: outputSize)
    }
}
