import MorphoTensor

/// VoxelMorph's registration network (Balakrishnan et al. 2019, `VxmDense`; the layout of the
/// PyTorch baselines' "vxm_classic"), 2D or 3D: a U-Net over the concatenated moving and fixed
/// images that predicts a dense displacement field.
///
///     encoder: per width, conv k3 → LeakyReLU(0.2), kept as a skip, then max-pool 2
///     decoder: per level, conv k3 → LeakyReLU(0.2), nearest 2× up-sampling, concatenation
///              with the matching skip; then the remaining widths as plain conv blocks
///     flow:    conv k3 to nd channels, weights N(0, 1e-5²) and bias 0 (an almost zero start)
///
/// Defaults are VoxelMorph's: encoder (16, 32, 32, 32), decoder (32, 32, 32, 32, 32, 16, 16)
/// — the first `encoder.count` decoder widths are the up-sampling levels, the rest run at the
/// top. `integrationSteps` > 0 reads the output as a stationary velocity and integrates it by
/// scaling and squaring (VoxelMorph's diffeomorphic mode uses 7). `halfResolution` stops the
/// decoder one level early (VoxelMorph's `unet_half_res`): the field is predicted (and
/// integrated) at half resolution, then resized to full resolution with its values doubled.
///
/// Input `[N, inChannels, spatial...]` (moving and fixed concatenated), each axis at least
/// 2^encoder.count voxels; sizes need not be divisible by it: an up-sampled tensor is resized
/// (nearest) onto its skip's size. Output: displacement `[N, nd, spatial...]` in voxels,
/// channel i along spatial axis i, for `SpatialTransformer`.
public final class DisplacementNet: Module {
    public let spatialRank: Int
    public let encoder: [ConvBlock]
    public let decoder: [ConvBlock]
    /// The full-resolution (or, with `halfResolution`, half-resolution) blocks after the last level.
    public let remaining: [ConvBlock]
    /// The flow head.
    public let flow: Conv
    public let integrationSteps: Int
    public let halfResolution: Bool

    public init(spatialRank: Int, inChannels: Int = 2, encoderWidths: [Int] = [16, 32, 32, 32],
                decoderWidths: [Int] = [32, 32, 32, 32, 32, 16, 16], integrationSteps: Int = 0,
                halfResolution: Bool = false, activation: ActivationKind = .leakyRelu(0.2), rng: inout RandomGenerator) {
        precondition(decoderWidths.count >= encoderWidths.count,
                     "DisplacementNet needs at least one decoder width per encoder level (\(encoderWidths.count)), got \(decoderWidths)")
        precondition(integrationSteps >= 0, "integrationSteps must be >= 0")
        self.spatialRank = spatialRank
        self.integrationSteps = integrationSteps
        self.halfResolution = halfResolution
        func block(_ cin: Int, _ cout: Int) -> ConvBlock {
            ConvBlock(spatialRank: spatialRank, inChannels: cin, outChannels: cout, norm: .none, activation: activation, rng: &rng)
        }
        var prev = inChannels
        var encoder: [ConvBlock] = []
        for width in encoderWidths {
            encoder.append(block(prev, width))
            prev = width
        }
        let levels = encoderWidths.count
        var decoder: [ConvBlock] = []
        for (level, width) in decoderWidths.prefix(levels).enumerated() {
            decoder.append(block(prev, width))
            prev = width
            if !halfResolution || level < levels - 1 { prev += encoderWidths[levels - 1 - level] }
        }
        var remaining: [ConvBlock] = []
        for width in decoderWidths.dropFirst(levels) {
            remaining.append(block(prev, width))
            prev = width
        }
        self.encoder = encoder
        self.decoder = decoder
        self.remaining = remaining
        flow = Conv(spatialRank: spatialRank, inChannels: prev, outChannels: spatialRank, initializer: .normal(std: 1e-5), rng: &rng)
    }

    public var children: [(String, any Module)] {
        func list(_ name: String, _ blocks: [ConvBlock]) -> [(String, any Module)] {
            blocks.enumerated().map { ("\(name).\($0.offset)", $0.element as any Module) }
        }
        return list("encoder", encoder) + list("decoder", decoder) + list("remaining", remaining) + [("flow", flow)]
    }

    /// The displacement `[N, nd, spatial...]` (voxels) for `x` `[N, inChannels, spatial...]`.
    public func callAsFunction(_ x: Tensor) -> Tensor { self(parts: [x]) }

    /// The displacement for the channel concatenation of `parts` (e.g. moving and fixed). Each
    /// skip connection is likewise handed to the next convolution as the decoder output and the
    /// encoder skip, which it reads up-sampled and concatenated in place
    /// (`conv(upsampling:skip:)`): neither the concatenation nor the up-sampled tensor is kept.
    public func callAsFunction(parts: [Tensor]) -> Tensor {
        let x = parts[0]
        precondition(x.rank == spatialRank + 2, "a \(spatialRank)D DisplacementNet takes [N, C, \(spatialRank) sizes], got \(x.shape)")
        var skips: [Tensor] = []
        var h = parts
        for block in encoder {
            let e = block(parts: h)
            skips.append(e)
            h = [maxPool(e)]
        }
        // The next convolution's input: `h`, or `coarse` up-sampled onto `skip` beside it.
        var upsampled: (coarse: Tensor, skip: Tensor)?
        func apply(_ block: ConvBlock) -> Tensor {
            guard let up = upsampled else { return block(parts: h) }
            upsampled = nil
            return block(upsampling: up.coarse, skip: up.skip)
        }
        for (level, block) in decoder.enumerated() {
            let d = apply(block)
            if !halfResolution || level < decoder.count - 1 {
                upsampled = (d, skips.removeLast())
            } else {
                h = [d]
            }
        }
        for block in remaining { h = [apply(block)] }
        var field: Tensor
        if let up = upsampled {
            field = flow(upsampling: up.coarse, skip: up.skip)
        } else {
            field = flow(parts: h)
        }
        if integrationSteps > 0 { field = integrate(field, steps: integrationSteps) }
        if halfResolution { field = resizeDisplacement(field, to: x.spatialShape) }
        return field
    }

    /// The displacement that aligns `moving` to `fixed` (both `[N, 1, spatial...]`).
    public func callAsFunction(moving: Tensor, fixed: Tensor) -> Tensor {
        self(parts: [moving, fixed])
    }
}
