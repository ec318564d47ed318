import MorphoTensor

/// Convolution → normalisation → activation (MONAI's `Convolution` block, "NDA" order without
/// dropout). A rectifying activation is fused into the normalisation. With norm `.none` and
/// activation `.identity` it is a plain convolution ("conv only").
public final class ConvBlock: Module {
    public let conv: Conv
    public let norm: Norm
    public let activation: Activation

    public init(spatialRank: Int, inChannels: Int, outChannels: Int, kernel: Int = 3, stride: Int = 1,
                norm: NormKind, activation: ActivationKind, initializer: WeightInitializer = .pytorchDefault,
                rng: inout RandomGenerator) {
        conv = Conv(spatialRank: spatialRank, inChannels: inChannels, outChannels: outChannels, kernel: kernel, stride: stride,
                    initializer: initializer, rng: &rng)
        self.norm = Norm(norm, channels: outChannels)
        self.activation = Activation(activation)
    }

    public var children: [(String, any Module)] { [("conv", conv), ("norm", norm), ("activation", activation)] }

    public func callAsFunction(_ x: Tensor) -> Tensor { norm(conv(x), activation: activation) }
}

/// Transposed convolution → normalisation → activation: a U-Net decoder's up-sampling step.
public final class UpConvBlock: Module {
    public let conv: ConvTranspose
    public let norm: Norm
    public let activation: Activation

    public init(spatialRank: Int, inChannels: Int, outChannels: Int, kernel: Int = 3, stride: Int = 2,
                norm: NormKind, activation: ActivationKind, rng: inout RandomGenerator) {
        conv = ConvTranspose(spatialRank: spatialRank, inChannels: inChannels, outChannels: outChannels, kernel: kernel,
                             stride: stride, rng: &rng)
        self.norm = Norm(norm, channels: outChannels)
        self.activation = Activation(activation)
    }

    public var children: [(String, any Module)] { [("conv", conv), ("norm", norm), ("activation", activation)] }

    /// Up-samples `x` to `outputSize` (spatial; nil: `stride` times the input).
    public func callAsFunction(_ x: Tensor, outputSize: [Int]? = nil) -> Tensor {
        norm(conv(x, outputSize: outputSize), activation: activation)
    }
}
