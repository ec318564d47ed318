import MorphoTensor

/// A segmentation U-Net with MONAI's layout (`monai.networks.nets.UNet` with
/// `num_res_units=0`, the network of the PyTorch baselines), 2D or 3D.
///
/// For widths `channels` c₀…c_L and `strides` s₀…s_{L−1}, level i is
///
///     down[i]:  conv k3 stride sᵢ (c_{i−1} → cᵢ) → norm → act        (c_{−1} = inChannels)
///     inner:    level i+1, or at the deepest level bottom: conv k3 stride 1 (c_{L−1} → c_L) → norm → act
///     up[i]:    transposed conv k3 stride sᵢ (cat(down, inner) → c_{i−1}) → norm → act
///
/// and the top `up[0]` is a bare transposed convolution to `outChannels` logits (no norm or
/// activation; MONAI's "conv only" last layer stands in for a final 1×1 convolution). The skip
/// connection concatenates each level's down output with what comes back from below.
/// Defaults are MONAI's: instance norm without affine, PReLU.
///
/// Input `[N, inChannels, spatial...]` → logits `[N, outChannels, spatial...]`, any spatial
/// size: stride-2 convolutions give ⌈n/2⌉ and each transposed convolution returns exactly its
/// level's input size (its output padding is chosen per axis), so sizes need not be divisible
/// by 2^levels.
public final class UNet: Module {
    public let spatialRank: Int
    /// Encoder blocks, outermost first (`down.0` works at the input resolution).
    public let down: [ConvBlock]
    /// The stride-1 block at the deepest level.
    public let bottom: ConvBlock
    /// Decoder blocks, outermost first (`up.0` produces the logits).
    public let up: [UpConvBlock]

    public init(spatialRank: Int, inChannels: Int, outChannels: Int, channels: [Int] = [16, 32, 64, 128],
                strides: [Int]? = nil, norm: NormKind = .instance, activation: ActivationKind = .prelu,
                rng: inout RandomGenerator) {
        precondition(channels.count >= 2, "UNet needs at least two channel widths, got \(channels)")
        let levels = channels.count - 1
        let strides = strides ?? Array(repeating: 2, count: levels)
        precondition(strides.count == levels, "UNet with \(channels.count) widths needs \(levels) strides, got \(strides)")
        self.spatialRank = spatialRank
        var down: [ConvBlock] = []
        var up: [UpConvBlock] = []
        for i in 0..<levels {
            let cin = i == 0 ? inChannels : channels[i - 1]
            down.append(ConvBlock(spatialRank: spatialRank, inChannels: cin, outChannels: channels[i], stride: strides[i],
                                  norm: norm, activation: activation, rng: &rng))
        }
        bottom = ConvBlock(spatialRank: spatialRank, inChannels: channels[levels - 1], outChannels: channels[levels],
                           norm: norm, activation: activation, rng: &rng)
        for i in 0..<levels {
            let inner = i == levels - 1 ? channels[levels] : channels[i]
            let top = i == 0
            up.append(UpConvBlock(spatialRank: spatialRank, inChannels: channels[i] + inner,
                                  outChannels: top ? outChannels : channels[i - 1], stride: strides[i],
                                  norm: top ? .none : norm, activation: top ? .identity : activation, rng: &rng))
        }
        self.down = down
        self.up = up
    }

    public var children: [(String, any Module)] {
        down.enumerated().map { ("down.\($0.offset)", $0.element as any Module) } + [("bottom", bottom)]
            + up.enumerated().map { ("up.\($0.offset)", $0.element as any Module) }
    }

    /// Logits `[N, outChannels, spatial...]` for `x` `[N, inChannels, spatial...]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == spatialRank + 2, "a \(spatialRank)D UNet takes [N, C, \(spatialRank) sizes], got \(x.shape)")
        return level(0, x)
    }

    private func level(_ i: Int, _ x: Tensor) -> Tensor {
        let d = down[i](x)
        let inner = i == down.count - 1 ? bottom(d) : level(i + 1, d)
        return up[i](Tensor.concat([d, inner], axis: 1), outputSize: x.spatialShape)
    }
}
