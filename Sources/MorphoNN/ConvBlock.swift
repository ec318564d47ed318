import MorphoTensor

/// A module that maps one image tensor `[N, C, spatial...]` to another: what a U-Net level is
/// built from (a `ConvBlock` or a `ResidualUnit`).
public protocol ImageLayer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}

/// Convolution → normalisation → activation (MONAI's `Convolution` block, "NDA" order without
/// dropout). A rectifying activation is fused into the normalisation. With norm `.none` and
/// activation `.identity` it is a plain convolution ("conv only").
public final class ConvBlock: ImageLayer {
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

    public func callAsFunction(_ x: Tensor) -> Tensor { self(parts: [x]) }

    /// The block applied to the channel concatenation of `parts` (a skip connection), which the
    /// convolution reads in place.
    public func callAsFunction(parts: [Tensor]) -> Tensor {
        apply { conv(parts: parts, activation: $0) }
    }

    /// The block applied to `coarse` up-sampled (nearest) onto `skip`'s grid and concatenated
    /// with `skip`, without keeping the up-sampled tensor (`Conv.callAsFunction(upsampling:skip:)`).
    public func callAsFunction(upsampling coarse: Tensor, skip: Tensor) -> Tensor {
        apply { conv(upsampling: coarse, skip: skip, activation: $0) }
    }

    /// `convolution(fused)` with the activation fused into it when it can be, else followed by
    /// the norm and activation.
    private func apply(_ convolution: (Rectifier) -> Tensor) -> Tensor {
        // Without a norm, a non-negative leaky slope is applied inside the convolution.
        if norm.kind == .none, let r = activation.rectifier, case .leaky(let s) = r, s >= 0 {
            return convolution(r)
        }
        return norm(convolution(.none), activation: activation)
    }
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

/// MONAI's `ResidualUnit` (He et al. 2016 as MONAI builds it): `subunits` conv blocks, the
/// first with `stride`, plus a residual path added to their output — the identity when stride
/// and channels are unchanged, a 1×1 convolution when only the channels change, otherwise a
/// k3 convolution with the same stride. `lastConvOnly` drops the last block's norm and
/// activation (the top of a U-Net decoder).
public final class ResidualUnit: ImageLayer {
    /// The conv blocks, in order (`unit.0` carries the stride).
    public let units: [ConvBlock]
    /// The residual projection; nil for the identity.
    public let residual: Conv?

    public init(spatialRank: Int, inChannels: Int, outChannels: Int, stride: Int = 1, subunits: Int = 2,
                norm: NormKind, activation: ActivationKind, lastConvOnly: Bool = false, rng: inout RandomGenerator) {
        var units: [ConvBlock] = []
        for i in 0..<max(1, subunits) {
            let convOnly = lastConvOnly && i == max(1, subunits) - 1
            units.append(ConvBlock(spatialRank: spatialRank, inChannels: i == 0 ? inChannels : outChannels, outChannels: outChannels,
                                   stride: i == 0 ? stride : 1, norm: convOnly ? .none : norm,
                                   activation: convOnly ? .identity : activation, rng: &rng))
        }
        self.units = units
        if stride != 1 || inChannels != outChannels {
            residual = Conv(spatialRank: spatialRank, inChannels: inChannels, outChannels: outChannels,
                            kernel: stride == 1 ? 1 : 3, stride: stride, rng: &rng)
        } else {
            residual = nil
        }
    }

    public var children: [(String, any Module)] {
        units.enumerated().map { ("unit.\($0.offset)", $0.element as any Module) } + (residual.map { [("residual", $0 as any Module)] } ?? [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for unit in units { h = unit(h) }
        return h + (residual?(x) ?? x)
    }
}
