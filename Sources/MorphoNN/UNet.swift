import MorphoTensor

/// A segmentation U-Net with MONAI's layout (`monai.networks.nets.UNet`; with
/// `residualUnits: 0` the network of the PyTorch baselines), 2D or 3D.
///
/// For widths `channels` c₀…c_L and `strides` s₀…s_{L−1}, level i is
///
///     down[i]:  conv k3 stride sᵢ (c_{i−1} → cᵢ) → norm → act        (c_{−1} = inChannels)
///     inner:    level i+1, or at the deepest level `bottom`: the same at stride 1 (c_{L−1} → c_L)
///     up[i]:    transposed conv k3 stride sᵢ (cat(down, inner) → c_{i−1}) → norm → act
///
/// and the top `up[0]` is a bare transposed convolution to `outChannels` logits (no norm or
/// activation; MONAI's "conv only" last layer stands in for a final 1×1 convolution). The skip
/// connection concatenates each level's down output with what comes back from below.
///
/// `residualUnits` r > 0 is MONAI's `num_res_units=r`: every down and bottom layer becomes a
/// `ResidualUnit` of r conv-norm-act blocks (r = 2: two per level, plus a residual path), and
/// each up layer — now with norm and activation also at the top — is followed by a one-block
/// `ResidualUnit` (`refine[i]`; conv only at the top).
/// Defaults are MONAI's: instance norm without affine, PReLU, no residual units.
///
/// `deepSupervision` (nnU-Net's deep supervision) adds a 1×1 convolution `head[j]` to logits
/// on the decoder output of level j + 1 for every level but the deepest decoder level, which
/// nnU-Net's loss weights with 0: `deepSupervisionLogits` returns the logits at the input
/// resolution and at levels 1…L−2 (L = `strides.count`), the call the first alone. The heads
/// are drawn from `rng` after every other layer, so the rest of the network is the one without
/// them, weight for weight.
///
/// Input `[N, inChannels, spatial...]` → logits `[N, outChannels, spatial...]`, any spatial
/// size: stride-2 convolutions give ⌈n/2⌉ and each transposed convolution returns exactly its
/// level's input size (its output padding is chosen per axis), so sizes need not be divisible
/// by 2^levels.
public final class UNet: Module {
    public let spatialRank: Int
    /// Encoder layers, outermost first (`down.0` reads the input).
    public let down: [any ImageLayer]
    /// The stride-1 layer at the deepest level.
    public let bottom: any ImageLayer
    /// Decoder up-sampling layers, outermost first (`up.0` produces the logits when there are
    /// no residual units).
    public let up: [UpConvBlock]
    /// With residual units: the one-block `ResidualUnit` after each `up` layer; empty otherwise.
    public let refine: [ResidualUnit]
    /// With deep supervision: the 1×1 logit convolutions on `up.1` … `up.(L−2)` (after their
    /// `refine`); empty otherwise.
    public let heads: [Conv]

    public init(spatialRank: Int, inChannels: Int, outChannels: Int, channels: [Int] = [16, 32, 64, 128],
                strides: [Int]? = nil, residualUnits: Int = 0, deepSupervision: Bool = false, norm: NormKind = .instance, activation: ActivationKind = .prelu,
                rng: inout RandomGenerator) {
        precondition(channels.count >= 2, "UNet needs at least two channel widths, got \(channels)")
        precondition(residualUnits >= 0, "residualUnits must be >= 0")
        let levels = channels.count - 1
        let strides = strides ?? Array(repeating: 2, count: levels)
        precondition(strides.count == levels, "UNet with \(channels.count) widths needs \(levels) strides, got \(strides)")
        self.spatialRank = spatialRank
        func layer(_ cin: Int, _ cout: Int, _ stride: Int) -> any ImageLayer {
            residualUnits == 0
                ? ConvBlock(spatialRank: spatialRank, inChannels: cin, outChannels: cout, stride: stride, norm: norm, activation: activation, rng: &rng)
                : ResidualUnit(spatialRank: spatialRank, inChannels: cin, outChannels: cout, stride: stride, subunits: residualUnits,
                               norm: norm, activation: activation, rng: &rng)
        }
        down = (0..<levels).map { i in layer(i == 0 ? inChannels : channels[i - 1], channels[i], strides[i]) }
        bottom = layer(channels[levels - 1], channels[levels], 1)
        var up: [UpConvBlock] = []
        var refine: [ResidualUnit] = []
        for i in 0..<levels {
            let inner = i == levels - 1 ? channels[levels] : channels[i]
            let cout = i == 0 ? outChannels : channels[i - 1]
            let convOnly = i == 0 && residualUnits == 0
            up.append(UpConvBlock(spatialRank: spatialRank, inChannels: channels[i] + inner, outChannels: cout, stride: strides[i],
                                  norm: convOnly ? .none : norm, activation: convOnly ? .identity : activation, rng: &rng))
            if residualUnits > 0 {
                refine.append(ResidualUnit(spatialRank: spatialRank, inChannels: cout, outChannels: cout, subunits: 1,
                                           norm: norm, activation: activation, lastConvOnly: i == 0, rng: &rng))
            }
        }
        self.up = up
        self.refine = refine
        heads = deepSupervision
            ? (1..<max(1, levels - 1)).map { i in
                Conv(spatialRank: spatialRank, inChannels: channels[i - 1], outChannels: outChannels, kernel: 1, rng: &rng)
            }
            : []
    }

    public var children: [(String, any Module)] {
        func list(_ name: String, _ modules: [any Module]) -> [(String, any Module)] {
            modules.enumerated().map { ("\(name).\($0.offset)", $0.element) }
        }
        return list("down", down) + [("bottom", bottom)] + list("up", up) + list("refine", refine) + list("head", heads)
    }

    /// Logits `[N, outChannels, spatial...]` for `x` `[N, inChannels, spatial...]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == spatialRank + 2, "a \(spatialRank)D UNet takes [N, C, \(spatialRank) sizes], got \(x.shape)")
        var unused: [Tensor] = []
        return level(0, x, supervised: &unused)
    }

    /// Deep supervision's outputs for `x` `[N, inChannels, spatial...]`: the logits of the call
    /// first, then those of `head[j]`, `[N, outChannels, spatial of level j + 1...]` (each level
    /// ⌈size / stride⌉ of the one above). Only the first without deep supervision.
    public func deepSupervisionLogits(_ x: Tensor) -> [Tensor] {
        precondition(x.rank == spatialRank + 2, "a \(spatialRank)D UNet takes [N, C, \(spatialRank) sizes], got \(x.shape)")
        var lower: [Tensor] = []
        let top = level(0, x, supervised: &lower)
        return [top] + lower
    }

    /// Level `i`'s decoder output; with deep supervision, the heads' logits of levels below
    /// `i` are put in `supervised` (shallowest first).
    private func level(_ i: Int, _ x: Tensor, supervised: inout [Tensor]) -> Tensor {
        let d = down[i](x)
        let inner = i == down.count - 1 ? bottom(d) : level(i + 1, d, supervised: &supervised)
        let u = up[i](Tensor.concat([d, inner], axis: 1), outputSize: x.spatialShape)
        let out = refine.isEmpty ? u : refine[i](u)
        if i >= 1, i - 1 < heads.count { supervised.insert(heads[i - 1](out), at: 0) }
        return out
    }
}
