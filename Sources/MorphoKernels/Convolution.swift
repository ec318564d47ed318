/// Dense 2D/3D convolution (cross-correlation with zero padding, as PyTorch's `Conv3d`) and its
/// two gradients, on contiguous float32 tensors.
///
/// Layouts: input `[N, Cin, D, H, W]`, output `[N, Cout, outD, outH, outW]`, weight
/// `[Cout, Cin, kD, kH, kW]`, bias `[Cout]`; 2D is D = 1 with kernel depth 1 (see
/// `ConvGeometry.planar`). Any channel counts, kernel sizes, strides and paddings are exact;
/// the fast paths are kernel 1–3 and stride 1–2.
///
/// How: direct convolution, no im2col. A pass is cut into tiles of (batch item, block of
/// output rows, run of output slices); a worker copies the source rows a tile reads into a
/// zero-padded, stride-phase-split slab (`ConvolutionSlab`, ~0.5 MB, a ring over depth so
/// each next slice loads only its new source slice), then runs register-blocked microkernels
/// over it (`ConvolutionMicrokernels.swift`), sized for the CPU's register file
/// (`VectorRegisters`): with AVX-512, 8 output channels × 3 vectors of 16 voxels per call for
/// the forward pass and the data gradient (stored straight into the output rows), and 32
/// output channels × 8 taps summed over the tile's voxels for the weight gradient (on a
/// channel-last copy of the output gradient); with AVX2, 6 × 1 and 16 × 6.
/// Stride-1, padding-1, 3×3×3 layers (≥ 16 channels each side, ≥ 256 output tiles) and 3×3
/// 2D layers (≥ 32 channels each side) take Winograd's minimal filtering instead, for the forward pass, the data gradient
/// (`WinogradConvolution.applies`) and, in 3D, the weight gradient (`appliesToWeightGradient`). The data gradient of a stride-s
/// convolution runs as s³ stride-1 phases, one per voxel parity (along W, with few channels, one dilated pass instead),
/// over one slab filled once per tile for all of them (`PolyphasePass`). Tiles go to
/// `Parallel.threads` workers first come first served. Workspace: per worker the slab and a
/// tile buffer (≲ 1 MB), per call the packed weights, and for the weight gradient per-worker
/// sums of the weight size; nothing grows with the volume, nothing is allocated in the loops.
public enum Convolution {
    /// `output = conv(input, weight) + bias`, overwriting `output`. `bias` may be nil (no bias).
    /// Output voxel `o` along an axis reads input voxels `o·stride + k − padding`, zero outside.
    public static func forward(
        _ g: ConvGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>
    ) {
        forward(g, inputs: ConvolutionSource(input, channels: g.cin, volume: g.inVoxels), weight: weight, bias: bias, output: output)
    }

    /// `forward` reading its `g.cin` input channels from `inputs` (e.g. two tensors whose
    /// concatenation is the input), without a concatenated copy.
    /// `rectifierSlope` s (≥ 0) rectifies the result, `y > 0 ? y : s·y`: fused
    /// into Winograd's output transform, a pass over the output after the direct kernels.
    public static func forward(
        _ g: ConvGeometry, inputs: ConvolutionSource, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, rectifierSlope: Float? = nil
    ) {
        precondition(inputs.channels == g.cin && inputs.volume == g.inVoxels, "convolution source does not match the geometry")
        precondition((rectifierSlope ?? 0) >= 0, "a fused rectifier has slope >= 0")
        if WinogradConvolution.applies(g, sourceChannels: g.cin, destinationChannels: g.cout) {
            WinogradConvolution.run(WinogradConvolution.Plan(g, sourceChannels: g.cin, destinationChannels: g.cout),
                                    filter: .forward(weight, sourceChannels: g.cin, taps: g.kernelVolume),
                                    bias: bias, source: inputs, destination: output, rectifierSlope: rectifierSlope)
            return
        }
        let pass = forwardPass(g)
        let k = pass.reduction
        runSpatial(PolyphasePass(pass), weights: { _, t in (weight + t, k) }, bias: bias, source: inputs, destination: output)
        if let slope = rectifierSlope {
            Parallel.forRanges(g.outputCount) { r in for i in r { output[i] = Rectification.scaled(output[i], sign: output[i], slope: slope) } }
        }
    }

    /// `forward` of the channel concatenation `[resize(coarse, to: grid, nearest), skip]`: the
    /// first `coarseChannels` input channels are `coarse` `[N, coarseChannels, coarseExtent]`
    /// up-sampled (nearest, `resize`) onto the input grid of `g`, the rest come from `skip`.
    /// An exact ×2 up-sampling into a Winograd layer never builds the up-sampled part (see
    /// WinogradUpsampling.swift: 27 of 64 products per tile for those channels); any other
    /// is built for the call, `N · coarseChannels · g.inVoxels` floats lent by `scratch`.
    public static func forward(
        _ g: ConvGeometry, upsampling coarse: UnsafePointer<Float>, coarseChannels: Int, coarseExtent: SpatialExtent,
        skip: ConvolutionSource, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        output: UnsafeMutablePointer<Float>, rectifierSlope: Float? = nil, scratch: @escaping Scratch = allocatedScratch
    ) {
        precondition(coarseChannels + skip.channels == g.cin && skip.volume == g.inVoxels && skip.rectifier == nil,
                     "up-sampled convolution source does not match the geometry")
        precondition((rectifierSlope ?? 0) >= 0, "a fused rectifier has slope >= 0")
        if WinogradConvolution.applies(g, sourceChannels: g.cin, destinationChannels: g.cout) {
            let plan = WinogradConvolution.Plan(g, sourceChannels: g.cin, destinationChannels: g.cout)
            let part = WinogradConvolution.UpsampledPart(base: coarse, channels: coarseChannels, extent: coarseExtent)
            if part.fits(plan) {
                WinogradConvolution.run(plan, filter: .forward(weight, sourceChannels: g.cin, taps: g.kernelVolume), bias: bias,
                                        source: skip, upsampled: part, destination: output, rectifierSlope: rectifierSlope)
                return
            }
        }
        withUpsampledSource(g, coarse: coarse, coarseChannels: coarseChannels, coarseExtent: coarseExtent, skip: skip, scratch: scratch) {
            forward(g, inputs: $0, weight: weight, bias: bias, output: output, rectifierSlope: rectifierSlope)
        }
    }

    /// `gradInput = convᵀ(gradOutput, weight)`: the gradient of `forward` with respect to its
    /// input, overwriting `gradInput` `[N, Cin, D, H, W]` from `gradOutput` `[N, Cout, outD, outH, outW]`.
    /// Input voxels that no output reads (past the last full window) get 0.
    ///
    /// This is also the forward pass of a transposed convolution (e.g. PyTorch's
    /// `ConvTranspose3d(a, b, kernel 2, stride 2)`): describe it as the convolution it transposes
    /// (`cin = b`, `cout = a`, input = the large grid) and pass its `[a, b, k, k, k]` weight.
    public static func backwardData(
        _ g: ConvGeometry, gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        gradInput: UnsafeMutablePointer<Float>
    ) {
        backwardData(g, gradOutput: gradOutput, weight: weight, inputChannels: 0..<g.cin, gradInput: gradInput)
    }

    /// The data gradient for input channels `inputChannels` only, overwriting `gradInput`
    /// `[N, inputChannels.count, D, H, W]`: the gradient of one part of a `ConvolutionSource`,
    /// written straight into that part's own tensor. `weight` is the whole `[Cout, Cin, k...]`.
    ///
    /// `rectifiedBy`: `gradOutput` arrives at a leaky-rectified output; the kernels read it times
    /// the rectifier's derivative (see `Rectification`).
    public static func backwardData(
        _ g: ConvGeometry, gradOutput: UnsafePointer<Float>, rectifiedBy rectifier: Rectification? = nil,
        weight: UnsafePointer<Float>, inputChannels: Range<Int>, gradInput: UnsafeMutablePointer<Float>
    ) {
        precondition(inputChannels.lowerBound >= 0 && inputChannels.upperBound <= g.cin && !inputChannels.isEmpty,
                     "input channels \(inputChannels) of a convolution with \(g.cin)")
        if WinogradConvolution.applies(g, sourceChannels: g.cout, destinationChannels: inputChannels.count) {
            // Stride 1, padding 1, kernel 3: the data gradient is the same layer over gradOutput
            // with the kernel flipped on every axis and the channels swapped.
            WinogradConvolution.run(
                WinogradConvolution.Plan(g, sourceChannels: g.cout, destinationChannels: inputChannels.count),
                filter: .dataGradient(weight, inputChannels: inputChannels, totalInputChannels: g.cin, taps: g.kernelVolume), bias: nil,
                source: ConvolutionSource(gradOutput, channels: g.cout, volume: g.outVoxels, rectifier: rectifier),
                destination: gradInput)
            return
        }
        let (polyphase, kernels, writesEveryVoxel) = dataGradientPass(g, inputChannels: inputChannels.count)
        if !writesEveryVoxel {
            gradInput.update(repeating: 0, count: g.n * inputChannels.count * g.inVoxels)
        }
        let (kh, kw) = (g.kernel.h, g.kernel.w)
        let kernelVolume = g.kernelVolume
        let (cin, c0) = (g.cin, inputChannels.lowerBound)
        runSpatial(polyphase, weights: { p, t in
            // Tap t = ((co·Jd + a)·Jh + b)·Jw + c of a phase is kernel voxel
            // (first + s·(J − 1 − j)) per axis: the flipped, strided sub-kernel.
            let (pd, ph, pw) = (kernels[p].d, kernels[p].h, kernels[p].w)
            let (jd, jh, jw) = (pd.axis.taps, ph.axis.taps, pw.axis.taps)
            let c = t % jw, b = (t / jw) % jh, a = (t / (jw * jh)) % jd, co = t / (jw * jh * jd)
            let kd = pd.first + pd.step * (jd - 1 - a)
            let khi = ph.first + ph.step * (jh - 1 - b)
            let kwi = pw.first + pw.step * (jw - 1 - c)
            return (weight + ((co * cin + c0) * kernelVolume + (kd * kh + khi) * kw + kwi), kernelVolume)
        }, bias: nil, source: ConvolutionSource(gradOutput, channels: g.cout, volume: g.outVoxels, rectifier: rectifier),
           destination: gradInput)
    }

    /// The data gradient of the up-sampled part of `forward(upsampling:…)`: input channels
    /// `inputChannels` (the coarse part's, within the concatenation) taken back through the
    /// nearest up-sampling (`resizeBackward`) onto `coarseExtent`, overwriting `gradCoarse`
    /// `[N, inputChannels.count, coarseExtent]`. An exact ×2 up-sampling into a Winograd layer
    /// sums each tile onto its coarse voxel in the output transform (27 of 64 products, see
    /// WinogradUpsampling.swift); any other goes through the up-sampled gradient
    /// `gradientBlock` channels at a time (`N · gradientBlock · g.inVoxels` floats lent by
    /// `scratch`).
    public static func backwardDataOfUpsampledPart(
        _ g: ConvGeometry, gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>, inputChannels: Range<Int>,
        coarseExtent: SpatialExtent, gradCoarse: UnsafeMutablePointer<Float>, scratch: @escaping Scratch = allocatedScratch
    ) {
        let c = inputChannels.count
        if WinogradConvolution.applies(g, sourceChannels: g.cout, destinationChannels: c) {
            let plan = WinogradConvolution.Plan(g, sourceChannels: g.cout, destinationChannels: c)
            if WinogradConvolution.UpsampledPart.fits(coarseExtent, plan) {
                WinogradConvolution.run(
                    plan, filter: .dataGradient(weight, inputChannels: inputChannels, totalInputChannels: g.cin, taps: g.kernelVolume),
                    bias: nil, source: ConvolutionSource(gradOutput, channels: g.cout, volume: g.outVoxels),
                    destination: gradCoarse, summedOnto: coarseExtent)
                return
            }
        }
        let grid = g.inputExtent(rank: coarseExtent.rank)
        let block = Swift.min(c, gradientBlock)
        scratch(g.n * block * grid.count) { fine in
            scratch(g.n * block * coarseExtent.count) { summed in
                for c0 in stride(from: 0, to: c, by: block) {
                    let cb = Swift.min(block, c - c0)
                    let first = inputChannels.lowerBound + c0
                    backwardData(g, gradOutput: gradOutput, weight: weight, inputChannels: first ..< first + cb, gradInput: fine)
                    resizeBackward(fine, newExtent: grid, into: summed, extent: coarseExtent, planes: g.n * cb, linear: false)
                    for item in 0..<g.n {
                        (gradCoarse + (item * c + c0) * coarseExtent.count).update(from: summed + item * cb * coarseExtent.count,
                                                                                   count: cb * coarseExtent.count)
                    }
                }
            }
        }
    }

    /// Lends `body` a buffer of at least `count` floats for the call: where the paths that
    /// cannot read an up-sampled part coarse build it (or its gradient). The tensor layer lends
    /// pooled, already-mapped memory; a fresh mapping per call would fault in every page.
    public typealias Scratch = @Sendable (_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) -> Void

    /// `Scratch` from the allocator, freed after the call.
    public static let allocatedScratch: Scratch = { count, body in
        let buffer = allocateFloats(count)
        defer { freeFloats(buffer) }
        body(buffer)
    }

    /// Channels of up-sampled gradient `backwardDataOfUpsampledPart` materialises at once where
    /// it has to (≥ 16 keeps the data gradient on the Winograd path).
    static let gradientBlock = 16

    /// `gradWeight[co, ci, k] = Σ_{n, o} gradOutput[n, co, o] · input[n, ci, o·stride + k − padding]`,
    /// overwriting `gradWeight` `[Cout, Cin, kD, kH, kW]`; and, when `gradBias` is non-nil,
    /// `gradBias[co] = Σ_{n, o} gradOutput[n, co, o]`, overwriting `[Cout]`.
    /// Sums run over the batch and all output voxels in float32: per worker and tile, then
    /// across workers.
    public static func backwardWeight(
        _ g: ConvGeometry, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?
    ) {
        backwardWeight(g, inputs: ConvolutionSource(input, channels: g.cin, volume: g.inVoxels), gradOutput: gradOutput,
                       gradWeight: gradWeight, gradBias: gradBias)
    }

    /// `backwardWeight` of `forward(upsampling:…)`: the input is `[resize(coarse, to: grid,
    /// nearest), skip]`. An exact ×2 up-sampling into a 3D Winograd layer transforms the coarse
    /// grid and skips the up-sampled channels where they are zero (WinogradUpsampling.swift);
    /// any other builds the up-sampled part for the call in memory lent by `scratch`.
    public static func backwardWeight(
        _ g: ConvGeometry, upsampling coarse: UnsafePointer<Float>, coarseChannels: Int, coarseExtent: SpatialExtent,
        skip: ConvolutionSource, gradOutput: UnsafePointer<Float>, gradWeight: UnsafeMutablePointer<Float>,
        gradBias: UnsafeMutablePointer<Float>?, scratch: @escaping Scratch = allocatedScratch
    ) {
        precondition(coarseChannels + skip.channels == g.cin && skip.volume == g.inVoxels && skip.rectifier == nil,
                     "up-sampled convolution source does not match the geometry")
        if WinogradConvolution.appliesToWeightGradient(g, source: skip) {
            let plan = WinogradConvolution.Plan(g, sourceChannels: g.cin, destinationChannels: g.cout)
            let part = WinogradConvolution.UpsampledPart(base: coarse, channels: coarseChannels, extent: coarseExtent)
            if part.fits(plan) {
                WinogradConvolution.runWeightGradient(plan, source: skip, upsampled: part, gradOutput: gradOutput, rectifier: nil,
                                                      gradWeight: gradWeight, gradBias: gradBias)
                return
            }
        }
        withUpsampledSource(g, coarse: coarse, coarseChannels: coarseChannels, coarseExtent: coarseExtent, skip: skip, scratch: scratch) {
            backwardWeight(g, inputs: $0, gradOutput: gradOutput, gradWeight: gradWeight, gradBias: gradBias)
        }
    }

    /// `body` on a source whose first part is `coarse` up-sampled (nearest) onto `g`'s input
    /// grid, built for the call in memory lent by `scratch`, followed by `skip`'s parts.
    static func withUpsampledSource(
        _ g: ConvGeometry, coarse: UnsafePointer<Float>, coarseChannels: Int, coarseExtent: SpatialExtent, skip: ConvolutionSource,
        scratch: @escaping Scratch, _ body: (ConvolutionSource) -> Void
    ) {
        let grid = g.inputExtent(rank: coarseExtent.rank)
        withoutActuallyEscaping(body) { body in
            scratch(g.n * coarseChannels * grid.count) { up in
                resize(coarse, extent: coarseExtent, into: up, newExtent: grid, planes: g.n * coarseChannels, linear: false)
                body(ConvolutionSource(parts: [ConvolutionSource.Part(UnsafePointer(up), channels: coarseChannels)] + skip.parts,
                                       volume: g.inVoxels))
            }
        }
    }

    /// `backwardWeight` reading the input channels from `inputs`; `rectifiedBy` as for `backwardData`.
    public static func backwardWeight(
        _ g: ConvGeometry, inputs: ConvolutionSource, gradOutput: UnsafePointer<Float>, rectifiedBy rectifier: Rectification? = nil,
        gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?
    ) {
        precondition(inputs.channels == g.cin && inputs.volume == g.inVoxels, "convolution source does not match the geometry")
        if WinogradConvolution.appliesToWeightGradient(g, source: inputs) {
            WinogradConvolution.runWeightGradient(
                WinogradConvolution.Plan(g, sourceChannels: g.cin, destinationChannels: g.cout), source: inputs,
                gradOutput: gradOutput, rectifier: rectifier, gradWeight: gradWeight, gradBias: gradBias)
            return
        }
        runWeightGradient(forwardPass(g), source: inputs, gradOutput: gradOutput, rectifier: rectifier, gradWeight: gradWeight,
                          gradBias: gradBias)
    }
}

// MARK: - Pass construction

extension Convolution {
    static func forwardPass(_ g: ConvGeometry) -> ConvolutionPass {
        ConvolutionPass(
            batch: g.n, sourceChannels: g.cin, destinationChannels: g.cout,
            d: .forward(input: g.inD, output: g.outD, kernel: g.kernel.d, stride: g.stride.d, padding: g.padding.d),
            h: .forward(input: g.inH, output: g.outH, kernel: g.kernel.h, stride: g.stride.h, padding: g.padding.h),
            w: .forward(input: g.inW, output: g.outW, kernel: g.kernel.w, stride: g.stride.w, padding: g.padding.w))
    }

    /// One stride phase of the data gradient along one axis: input voxels `x = s·q + r` get
    /// `Σ_j gradOut[q + c − j] · w[first + s·j]` for the taps `first + s·j < kernel`, where
    /// `first = (r + padding) mod s` and `c = (r + padding − first) / s`. As a pass over
    /// gradOut with the taps reversed (j' = J − 1 − j): stride 1, padding `J − 1 − c`.
    struct DataGradientPhase {
        var axis: ConvolutionAxis
        /// Kernel index of the phase's tap j = 0 before reversal, and the step between taps.
        var first: Int
        var step: Int
    }

    static func dataGradientPhases(input: Int, output: Int, kernel: Int, stride s: Int, padding p: Int) -> [DataGradientPhase] {
        var phases = [DataGradientPhase]()
        for r in 0..<s where r < input {
            let first = (r + p) % s
            let taps = first < kernel ? (kernel - first + s - 1) / s : 0
            let c = (r + p - first) / s
            let grid = (input - r + s - 1) / s
            let axis = ConvolutionAxis(source: output, grid: grid, stride: 1, taps: taps, pad: taps - 1 - c,
                                       destination: input, step: s, origin: r)
            phases.append(DataGradientPhase(axis: axis, first: first, step: s))
        }
        return phases
    }

    /// From this many output-gradient channels the data gradient of a strided convolution runs
    /// W by parity phases instead of one dilated pass (see `dilatedDataGradientAxis`): with many
    /// channels the zeros' multiply-adds cost more than scattering the phases (U-Net steps with
    /// 32–128 channels: 64³ 35.6 vs 44.7 ms, 128³ 180 vs 238 ms, 8 × 256² 78 vs 122 ms, medians
    /// of 6 interleaved runs on a loaded 2-core machine; 64 channels was no better at 64³ and
    /// worse at 128³ and 2D). A variable so the tests run both ways.
    nonisolated(unsafe) static var parityPhasesAlongWFromChannels = 32

    /// The passes of the data gradient per axis: parity phases along D and H; along W parity
    /// phases too, or one dilated pass for few channels.
    static func dataGradientPhases(_ g: ConvGeometry) -> (d: [DataGradientPhase], h: [DataGradientPhase], w: [DataGradientPhase]) {
        (dataGradientPhases(input: g.inD, output: g.outD, kernel: g.kernel.d, stride: g.stride.d, padding: g.padding.d),
         dataGradientPhases(input: g.inH, output: g.outH, kernel: g.kernel.h, stride: g.stride.h, padding: g.padding.h),
         g.stride.w == 1 || g.cout >= parityPhasesAlongWFromChannels
            ? dataGradientPhases(input: g.inW, output: g.outW, kernel: g.kernel.w, stride: g.stride.w, padding: g.padding.w)
            : [dilatedDataGradientAxis(input: g.inW, output: g.outW, kernel: g.kernel.w, stride: g.stride.w, padding: g.padding.w)])
    }

    /// The data gradient of `g` for `destinationChannels` input channels as one polyphase pass
    /// over the output gradient: a phase per parity (per axis, see `dataGradientPhases`) that
    /// some kernel tap reaches, with the axes of the kernel each phase reads. A parity no tap
    /// reaches (kernel < stride) has gradient 0 and no phase: then `writesEveryVoxel` is false.
    static func dataGradientPass(_ g: ConvGeometry, inputChannels destinationChannels: Int)
        -> (polyphase: PolyphasePass, kernels: [(d: DataGradientPhase, h: DataGradientPhase, w: DataGradientPhase)],
            writesEveryVoxel: Bool) {
        let (phasesD, phasesH, phasesW) = dataGradientPhases(g)
        let writesEveryVoxel = ![phasesD, phasesH, phasesW].contains(where: { $0.contains { $0.axis.taps == 0 } })
        var passes = [ConvolutionPass]()
        var kernels = [(d: DataGradientPhase, h: DataGradientPhase, w: DataGradientPhase)]()
        for pd in phasesD where pd.axis.taps > 0 {
            for ph in phasesH where ph.axis.taps > 0 {
                for pw in phasesW where pw.axis.taps > 0 {
                    passes.append(ConvolutionPass(batch: g.n, sourceChannels: g.cout, destinationChannels: destinationChannels,
                                                  d: pd.axis, h: ph.axis, w: pw.axis))
                    kernels.append((pd, ph, pw))
                }
            }
        }
        return (PolyphasePass(phases: passes), kernels, writesEveryVoxel)
    }

    /// The data gradient along W of a stride-s convolution as one pass: the flipped full kernel
    /// over gradOut with s − 1 zeros between voxels (`dilation`), every input voxel written in
    /// order. Up to s× the multiply-adds of the parity phases (the zeros), but the output rows
    /// are dense, so the row-vector kernels store straight into them instead of scattering.
    static func dilatedDataGradientAxis(input: Int, output: Int, kernel: Int, stride s: Int, padding p: Int) -> DataGradientPhase {
        let axis = ConvolutionAxis(source: output, grid: input, stride: 1, taps: kernel, pad: kernel - 1 - p,
                                   destination: input, step: 1, origin: 0, dilation: s)
        return DataGradientPhase(axis: axis, first: 0, step: 1)
    }
}

// MARK: - Drivers

extension Convolution {
    /// A block of destination channels handled by one `SpatialTile<count, ≤ positions>` call.
    struct ChannelBlock {
        var first: Int
        var count: Int
        /// Widest position block, in vectors of 16.
        var positions: Int
        /// Start of the block's packed `[taps][count]` weights.
        var weightOffset: Int
    }

    static func channelBlocks(_ channels: Int, taps: Int) -> [ChannelBlock] {
        var blocks = [ChannelBlock]()
        var first = 0
        while first < channels {
            let m = Swift.min(ConvolutionMicrokernel.spatialChannels, channels - first)
            blocks.append(ChannelBlock(first: first, count: m, positions: ConvolutionMicrokernel.spatialBlock(channels: m),
                                       weightOffset: first * taps))
            first += m
        }
        return blocks
    }

    /// The reduction `0 ..< taps` cut into consecutive chunks of whole source channels of about
    /// `ConvolutionMicrokernel.tapChunk` taps. A microkernel call reads, per tap, one slab row
    /// segment and M weights; over a whole 16-channel, 27-tap reduction that is ~20 KB of slab
    /// lines plus 10 KB of weights, which with the AVX2 blocks (16 voxels a call) fills a 32 KB L1
    /// and evicts what the next call reuses. In chunks the outputs are read back and added to
    /// (`SpatialTileArguments.accumulate`), a few loads per hundred FMAs.
    static func tapChunks(taps: Int, tapsPerChannel: Int) -> [Range<Int>] {
        let limit = ConvolutionMicrokernel.tapChunk
        guard limit > 0, taps > limit, tapsPerChannel > 0, taps % tapsPerChannel == 0 else { return [0..<taps] }
        let channels = taps / tapsPerChannel
        let perChunk = Swift.max(1, limit / tapsPerChannel)
        let count = (channels + perChunk - 1) / perChunk
        // Near-equal chunks: 16 channels of 27 taps at ≤ 4 per chunk → 4, 4, 4, 4.
        return (0..<count).map { i in
            (i * channels / count * tapsPerChannel)..<((i + 1) * channels / count * tapsPerChannel)
        }
    }

    /// Tiling and buffers of `runSpatial`. Row vectors (16 consecutive voxels of one
    /// destination row, stored straight into the destination; each row's partial last vector
    /// through a small buffer) need a destination dense along W; flat vectors over the slab's
    /// positions (rows of `pitch`, whose last `pitch − grid.w` lanes are discarded) go through
    /// a tile buffer and are scattered. Row vectors are used when W allows and they waste no
    /// more lanes than flat ones plus ~5 % for the scatter, e.g. for any W multiple of 16.
    /// A polyphase pass has one mode for all its phases: rows only when every phase allows them
    /// (flat vectors suit any phase); the tiling, slab and buffer are the envelope's.
    struct SpatialPlan {
        let rowMode: Bool
        let tiling: ConvolutionTiling
        let slab: ConvolutionSlab
        /// Floats per channel of the worker's buffer: the tile (flat) or one vector per row (row mode).
        let bufferStride: Int

        init(_ polyphase: PolyphasePass) {
            let envelope = polyphase.envelope
            let pitch = envelope.w.grid + (envelope.w.taps - 1) / envelope.w.stride
            rowMode = polyphase.phases.allSatisfy { phase in
                phase.pass.w.step == 1 && Double(16 * ((phase.pass.w.grid + 15) / 16)) <= 1.05 * Double(pitch)
            }
            tiling = ConvolutionTiling(envelope, extraBytesPerRow: rowMode ? 0 : envelope.destinationChannels * pitch * 4)
            slab = ConvolutionSlab(envelope, rows: tiling.rows)
            bufferStride = rowMode ? 16 * tiling.rows : slab.vectors * 16
        }

        /// Bytes allocated by one call with `workers` workers.
        func workspaceBytes(_ polyphase: PolyphasePass, workers: Int) -> Int {
            let channels = polyphase.envelope.destinationChannels
            let reduction = polyphase.phases.reduce(0) { $0 + $1.pass.reduction }
            let perWorker = slab.floats + channels * bufferStride + slab.depthSlots * reduction * 2
            return 4 * (workers * perWorker + channels * (reduction + 1))
        }
    }

    /// Tiling and buffers of `runWeightGradient`.
    struct WeightGradientPlan {
        let tiling: ConvolutionTiling
        let slab: ConvolutionSlab
        /// Output channels rounded up to whole vectors.
        let paddedChannels: Int
        /// Running sums per group of tiles (`PartialSums`; at least one group per worker):
        /// `[taps][padded]` for the weights, then `[padded]` for the bias.
        let sumsPerWorker: Int

        init(_ pass: ConvolutionPass) {
            paddedChannels = (pass.destinationChannels + 15) / 16 * 16
            let pitch = pass.w.grid + (pass.w.taps - 1) / pass.w.stride
            tiling = ConvolutionTiling(pass, extraBytesPerRow: pitch * paddedChannels * 4)
            slab = ConvolutionSlab(pass, rows: tiling.rows)
            sumsPerWorker = (pass.reduction + 1) * paddedChannels
        }

        /// Bytes allocated by one call with `workers` workers.
        func workspaceBytes(_ pass: ConvolutionPass, workers: Int) -> Int {
            let perWorker = slab.floats + slab.positions * paddedChannels + sumsPerWorker + slab.depthSlots * pass.reduction * 2
            let extraGroups = PartialSums.mostExtraGroups(workers: workers, floatsPerGroup: sumsPerWorker)
            return 4 * (workers * perWorker + extraGroups * sumsPerWorker)
        }
    }

    /// The most workspace any of the three kernels allocates for geometry `g` with `workers`
    /// workers, in bytes.
    static func workspaceBytes(_ g: ConvGeometry, workers: Int) -> Int {
        let forward = forwardPass(g)
        var most = Swift.max(SpatialPlan(PolyphasePass(forward)).workspaceBytes(PolyphasePass(forward), workers: workers),
                             WeightGradientPlan(forward).workspaceBytes(forward, workers: workers))
        for (s, d) in [(g.cin, g.cout), (g.cout, g.cin)] where WinogradConvolution.applies(g, sourceChannels: s, destinationChannels: d) {
            most = Swift.max(most, WinogradConvolution.Plan(g, sourceChannels: s, destinationChannels: d).workspaceBytes(workers: workers))
        }
        let data = dataGradientPass(g, inputChannels: g.cin)
        return Swift.max(most, SpatialPlan(data.polyphase).workspaceBytes(data.polyphase, workers: workers))
    }

    /// Runs a pass, or the phases of a polyphase pass over one shared slab, with the
    /// position-vectorised `SpatialTile` kernels, overwriting every destination voxel the
    /// phases' grids map to. `weights(phase, t)` gives where the coefficients of tap `t` of
    /// phase `phase` are: destination channel `cdst`'s at `pointer[cdst · stride]`.
    /// Row or flat output vectors: see `SpatialPlan`.
    ///
    /// A tile fills the slab once per source slice and then runs every phase over it, so the
    /// phases' destination voxels of one tile are written by one worker, one phase after another
    /// (the parity scatter along W reads and rewrites the other phases' voxels of its rows).
    static func runSpatial(
        _ polyphase: PolyphasePass, weights: (_ phase: Int, _ tap: Int) -> (pointer: UnsafePointer<Float>, stride: Int),
        bias: UnsafePointer<Float>?, source: ConvolutionSource, destination: UnsafeMutablePointer<Float>
    ) {
        let envelope = polyphase.envelope
        let channels = envelope.destinationChannels
        let plan = SpatialPlan(polyphase)
        let (tiling, slab, bufferStride) = (plan.tiling, plan.slab, plan.bufferStride)
        let pitch = slab.pitch

        // Per phase: its packed weights `[taps][block]` per channel block and its offset tables,
        // each placed after the earlier phases', and its reduction chunks.
        struct PhaseRun {
            var pass: ConvolutionPass
            var taps: Int
            var blocks: [ChannelBlock]
            var chunks: [Range<Int>]
            var tables: Int
        }
        var runs = [PhaseRun]()
        var offsetTables = [Int]()
        var packedCount = 0
        for phase in polyphase.phases {
            let pass = phase.pass
            let taps = pass.reduction
            let blocks = channelBlocks(channels, taps: taps).map { b in
                var b = b
                b.weightOffset += packedCount
                return b
            }
            runs.append(PhaseRun(pass: pass, taps: taps, blocks: blocks,
                                 chunks: tapChunks(taps: taps, tapsPerChannel: pass.tapsPerChannel),
                                 tables: offsetTables.count))
            offsetTables += slab.tapOffsets(pass, shift: phase.shift)
            packedCount += channels * taps
        }
        let packed = allocateFloats(packedCount + channels)
        defer { freeFloats(packed) }
        // Packing reads the weights with a stride (one load per coefficient): split over the
        // workers by channel block when there are many (a 128 × 64 × 27 kernel packed on one core
        // while the other waited was ~2 % of a U-Net step).
        let packing = runs.indices.flatMap { p in runs[p].blocks.map { (phase: p, block: $0) } }
        let split = packedCount >= 16384
        Parallel.forEach(split ? packing.count : 1) { i in
            for (p, b) in (split ? packing[i...i] : packing[...]) {
                var to = packed + b.weightOffset
                for t in 0..<runs[p].taps {
                    let (pointer, stride) = weights(p, t)
                    let from = pointer + b.first &* stride
                    for m in 0..<b.count { to[m] = from[m &* stride] }
                    to += b.count
                }
            }
        }
        let biasValues = packed + packedCount
        for c in 0..<channels { biasValues[c] = bias?[c] ?? 0 }

        let queue = TileQueue(count: tiling.count)
        let workers = Swift.min(Parallel.threads, queue.count)

        offsetTables.withUnsafeBufferPointer { tables in
            Parallel.forEach(workers) { _ in
                let slabBuffer = allocateFloats(slab.floats)
                let buffer = allocateFloats(channels * bufferStride)
                let channelBases = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 2 * envelope.sourceChannels)
                let rectifiedRow = allocateFloats(source.rectifier == nil ? 0 : envelope.w.source)
                defer { freeFloats(slabBuffer); freeFloats(buffer); freeFloats(rectifiedRow); channelBases.deallocate() }
                let rectifierBases = channelBases + envelope.sourceChannels
                let rectifier = source.rectifier.map { (bases: UnsafePointer(rectifierBases), slope: $0.slope, scratch: rectifiedRow) }
                slabBuffer.update(repeating: 0, count: slab.floats)
                var loaded = [Int](repeating: Int.min, count: slab.depthSlots)

                while let index = queue.claim() {
                    let (n, qd0, qd1, qh0) = tiling.tile(index)
                    source.channelBases(batchItem: n, into: channelBases)
                    source.rectifierBases(batchItem: n, into: rectifierBases)
                    for s in 0..<slab.depthSlots { loaded[s] = Int.min }
                    for qd in qd0..<qd1 {
                        for jd in 0..<envelope.d.taps {
                            let z = qd * envelope.d.stride + jd - envelope.d.pad
                            if loaded[slab.slot(z)] != z {
                                slab.fill(envelope, channels: channelBases, z: z, qh0: qh0, into: slabBuffer, rectifier: rectifier)
                                loaded[slab.slot(z)] = z
                            }
                        }
                        let table = slab.table(forSlice: qd, envelope)
                        for run in runs where qd < run.pass.d.grid && qh0 < run.pass.h.grid {
                            let pass = run.pass
                            let (taps, blocks, chunks) = (run.taps, run.blocks, run.chunks)
                            let rowsValid = Swift.min(tiling.rows, pass.h.grid - qh0)
                            let gridW = pass.w.grid
                            let (fullVectors, tailLanes) = (gridW / 16, gridW % 16)
                            let dstVolume = pass.destinationVolume
                            let dstRow = pass.w.destination
                            let offsets = tables.baseAddress! + run.tables + table * taps
                            let zd = qd * pass.d.step + pass.d.origin
                            // Destination row of grid row ql, channel 0.
                            let plane = destination + n * channels * dstVolume + zd * pass.h.destination * dstRow + pass.w.origin
                            @inline(__always) func destinationRow(_ ql: Int) -> UnsafeMutablePointer<Float> {
                                plane + ((qh0 + ql) * pass.h.step + pass.h.origin) * dstRow
                            }
                            var args = SpatialTileArguments(
                                taps: taps, offsets: offsets, weights: UnsafePointer(packed), bias: UnsafePointer(biasValues),
                                source: UnsafePointer(slabBuffer), sourceRowStride: pitch, output: buffer, outputRowStride: 0,
                                outputStride: 0, vectorsPerRow: Int.max, row: 0, vector: 0)
                            if plan.rowMode {
                                for (c, chunk) in chunks.enumerated() {
                                    args.select(chunk, first: c == 0, offsets: offsets)
                                    for b in blocks {
                                        args.weights = UnsafePointer(packed + b.weightOffset + chunk.lowerBound * b.count)
                                        args.bias = UnsafePointer(biasValues + b.first)
                                        // Full vectors, straight into the destination.
                                        args.source = UnsafePointer(slabBuffer)
                                        args.output = destinationRow(0) + b.first * dstVolume
                                        args.outputRowStride = pass.h.step * dstRow
                                        args.outputStride = dstVolume
                                        args.vectorsPerRow = fullVectors
                                        let count = rowsValid * fullVectors
                                        var i = 0
                                        (args.row, args.vector) = (0, 0)
                                        while i < count {
                                            let r = Swift.min(b.positions, count - i)
                                            ConvolutionMicrokernel.spatial(m: b.count, r: r, args)
                                            // Advance (row, vector) by r without dividing.
                                            args.vector += r
                                            while args.vector >= fullVectors { args.vector -= fullVectors; args.row += 1 }
                                            i += r
                                        }
                                        // Each row's partial last vector, into the buffer.
                                        guard tailLanes > 0 else { continue }
                                        args.source = UnsafePointer(slabBuffer + 16 * fullVectors)
                                        args.output = buffer + b.first * bufferStride
                                        args.outputRowStride = 16
                                        args.outputStride = bufferStride
                                        args.vectorsPerRow = 1
                                        (args.row, args.vector) = (0, 0)
                                        while args.row < rowsValid {
                                            let r = Swift.min(b.positions, rowsValid - args.row)
                                            ConvolutionMicrokernel.spatial(m: b.count, r: r, args)
                                            args.row += r
                                        }
                                    }
                                }
                                if tailLanes > 0 {
                                    for c in 0..<channels {
                                        for ql in 0..<rowsValid {
                                            let out = destinationRow(ql) + c * dstVolume + 16 * fullVectors
                                            let lanes = buffer + c * bufferStride + 16 * ql
                                            for q in 0..<tailLanes { out[q] = lanes[q] }
                                        }
                                    }
                                }
                            } else {
                                let vectors = (rowsValid * pitch + 15) / 16
                                args.outputStride = bufferStride
                                for (c, chunk) in chunks.enumerated() {
                                    args.select(chunk, first: c == 0, offsets: offsets)
                                    for b in blocks {
                                        args.weights = UnsafePointer(packed + b.weightOffset + chunk.lowerBound * b.count)
                                        args.bias = UnsafePointer(biasValues + b.first)
                                        args.output = buffer + b.first * bufferStride
                                        args.vector = 0
                                        while args.vector < vectors {
                                            let r = Swift.min(b.positions, vectors - args.vector)
                                            ConvolutionMicrokernel.spatial(m: b.count, r: r, args)
                                            args.vector += r
                                        }
                                    }
                                }
                                // Scatter the valid positions (qw < grid.w) to the destination.
                                for c in 0..<channels {
                                    for ql in 0..<rowsValid {
                                        let out = destinationRow(ql) + c * dstVolume
                                        let t = buffer + c * bufferStride + ql * pitch
                                        if pass.w.step == 1 {
                                            for qw in 0..<gridW { out[qw] = t[qw] }
                                        } else {
                                            scatterRow(t, count: gridW, step: pass.w.step, into: out,
                                                       available: dstRow &- pass.w.origin)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `out[q·step] = values[q]` for `q < count`; `available` floats may be read and written
    /// from `out`. Step 2 (the parity phases of a stride-2 data gradient along W) goes 16 at a
    /// time: 32 floats of the row read, the 16 values put in their even lanes (the standard
    /// library's `evenHalf` setter, a permute), stored back, so the odd voxels (another phase's,
    /// written by a pass before or after this one, never concurrently) keep what they hold.
    @inline(__always)
    static func scatterRow(_ values: UnsafePointer<Float>, count: Int, step: Int, into out: UnsafeMutablePointer<Float>,
                           available: Int) {
        var q = 0
        if step == 2 {
            while q &+ 16 <= count && 2 &* q &+ 32 <= available {
                let to = out + 2 &* q
                var pair = SIMD32<Float>(lowHalf: loadVector(to), highHalf: loadVector(to + 16))
                pair.evenHalf = loadVector(values + q)
                storeVector(pair.lowHalf, to)
                storeVector(pair.highHalf, to + 16)
                q &+= 16
            }
        }
        while q < count {
            out[q &* step] = values[q]
            q &+= 1
        }
    }

    /// Runs the weight gradient of a forward-shaped pass with the channel-vectorised
    /// `WeightGradientTile` kernels: per group of consecutive tiles (`PartialSums`), running sums
    /// `[tap][channel]`, then one reduction over groups into `gradWeight` `[Cdst, K]`.
    static func runWeightGradient(
        _ pass: ConvolutionPass, source: ConvolutionSource, gradOutput: UnsafePointer<Float>, rectifier: Rectification?,
        gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?
    ) {
        let taps = pass.reduction
        let channels = pass.destinationChannels
        let plan = WeightGradientPlan(pass)
        let (tiling, slab, padded, perWorker) = (plan.tiling, plan.slab, plan.paddedChannels, plan.sumsPerWorker)
        let pitch = slab.pitch
        let offsetTables = slab.tapOffsets(pass)
        let workers = Swift.min(Parallel.threads, tiling.count)
        let partial = PartialSums(items: tiling.count, workers: workers,
                                  flops: 2 * Double(pass.batch * pass.gridVolume * taps * channels), floatsPerGroup: perWorker)
        let sums = allocateFloats(partial.groups * perWorker)  // each group's zeroed when claimed
        defer { freeFloats(sums) }
        let queue = TileQueue(count: partial.groups)
        let tapBlocks = ConvolutionMicrokernel.weightGradientTapBlocks(taps)
        let gridPlane = pass.h.grid * pass.w.grid
        let vectors = padded / 16

        offsetTables.withUnsafeBufferPointer { tables in
            Parallel.forEach(workers) { _ in
                let slabBuffer = allocateFloats(slab.floats)
                let grad = allocateFloats(slab.positions * padded)
                let channelBases = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: pass.sourceChannels)
                defer { freeFloats(slabBuffer); freeFloats(grad); channelBases.deallocate() }
                slabBuffer.update(repeating: 0, count: slab.floats)
                // Columns qw ≥ grid.w and channels ≥ Cdst stay 0, so garbage slab positions add nothing.
                grad.update(repeating: 0, count: slab.positions * padded)
                var loaded = [Int](repeating: Int.min, count: slab.depthSlots)

                // Adds tile `index`'s products into `acc` (weights) and `biasAcc` (bias).
                func accumulate(tile index: Int, into acc: UnsafeMutablePointer<Float>, bias biasAcc: UnsafeMutablePointer<Float>) {
                    let (n, qd0, qd1, qh0) = tiling.tile(index)
                    let rowsValid = Swift.min(tiling.rows, pass.h.grid - qh0)
                    source.channelBases(batchItem: n, into: channelBases)
                    for s in 0..<slab.depthSlots { loaded[s] = Int.min }
                    for qd in qd0..<qd1 {
                        for jd in 0..<pass.d.taps {
                            let z = qd * pass.d.stride + jd - pass.d.pad
                            if loaded[slab.slot(z)] != z {
                                slab.fill(pass, channels: channelBases, z: z, qh0: qh0, into: slabBuffer)
                                loaded[slab.slot(z)] = z
                            }
                        }
                        let offsets = tables.baseAddress! + slab.table(forSlice: qd, pass) * taps
                        transposeGradient(gradOutput, rectifier: rectifier, pass: pass, n: n, qd: qd, qh0: qh0, rows: rowsValid,
                                          pitch: pitch, padded: padded, gridPlane: gridPlane, into: grad)
                        let positions = rowsValid * pitch
                        if gradBias != nil {
                            for v in 0..<vectors {
                                var sum = loadVector(biasAcc + 16 * v)
                                var g = grad + 16 * v
                                for _ in 0..<positions {
                                    sum += loadVector(g)
                                    g += padded
                                }
                                storeVector(sum, biasAcc + 16 * v)
                            }
                        }
                        var v = 0
                        while v < vectors {
                            let vb = Swift.min(ConvolutionMicrokernel.weightGradientVectors, vectors - v)
                            // Keep the swept gradient rows (chunk · vb · 64 bytes) in L1.
                            let chunk = 256 / vb
                            var p0 = 0
                            while p0 < positions {
                                let count = Swift.min(chunk, positions - p0)
                                for block in tapBlocks {
                                    let t = block.lowerBound
                                    ConvolutionMicrokernel.weightGradient(v: vb, r: block.count, WeightGradientTileArguments(
                                        positions: count, gradOut: grad + p0 * padded + 16 * v, gradOutStride: padded,
                                        slab: slabBuffer + p0, offsets: offsets + t,
                                        accumulator: acc + t * padded + 16 * v, accumulatorStride: padded))
                                }
                                p0 += count
                            }
                            v += vb
                        }
                    }
                }

                while let claimed = queue.claim() {
                    let acc = sums + claimed * perWorker
                    acc.update(repeating: 0, count: perWorker)
                    for index in partial.range(claimed) { accumulate(tile: index, into: acc, bias: acc + taps * padded) }
                }
            }
        }
        // gradWeight[c, t] = Σ_groups sums[group][t][c], gradBias likewise from row `taps`: groups
        // added in order (`PartialSums.reduce`), then transposed 16 channels at a time.
        partial.reduce(sums, floatsPerGroup: perWorker)
        Parallel.forEach(vectors) { v in
            let c0 = 16 * v
            let lanes = Swift.min(16, channels - c0)
            for t in 0..<taps {
                let row = sums + t * padded + c0
                for lane in 0..<lanes { gradWeight[(c0 + lane) * taps + t] = row[lane] }
            }
            if let gradBias {
                for lane in 0..<lanes { gradBias[c0 + lane] = sums[taps * padded + c0 + lane] }
            }
        }
    }

    /// Channel-last copy of grid slice `qd`, rows `qh0 ..< qh0 + rows` of the output gradient
    /// `[N, C, gridD, gridH, gridW]` into `grad[ql·pitch + qw][c]` (rows of `padded` floats):
    /// 16×16 block transposes, scalar moves for the last channels and columns.
    ///
    /// With `rectifier` every value is multiplied by the rectifier's derivative at the matching
    /// output voxel (`y > 0 ? 1 : slope`), applied to the rows as they are read (vectors) rather
    /// than in the transposed layout (a strided scalar pass over it took about 6 % of a 2D
    /// registration step).
    static func transposeGradient(
        _ gradOutput: UnsafePointer<Float>, rectifier: Rectification?, pass: ConvolutionPass, n: Int, qd: Int, qh0: Int, rows: Int,
        pitch: Int, padded: Int, gridPlane: Int, into grad: UnsafeMutablePointer<Float>
    ) {
        let channels = pass.destinationChannels
        let gridW = pass.w.grid
        let channelStride = pass.d.grid * gridPlane
        let tileOffset = (n * channels * pass.d.grid + qd) * gridPlane + qh0 * gridW
        let tileBase = gradOutput + tileOffset
        // The derivative factor of one scalar (last channels and columns): y at the same offset.
        @inline(__always) func value(_ offset: Int) -> Float {
            guard let rectifier else { return tileBase[offset] }
            return Rectification.scaled(tileBase[offset], sign: rectifier.output[tileOffset + offset], slope: rectifier.slope)
        }
        for ql in 0..<rows {
            let rowOffset = ql * gridW
            let dstRow = grad + ql * pitch * padded
            var c0 = 0
            while c0 + 16 <= channels {
                var qw = 0
                while qw + 16 <= gridW {
                    let offset = rowOffset + c0 * channelStride + qw
                    transpose16x16(tileBase + offset, srcStride: channelStride, dstRow + qw * padded + c0, dstStride: padded,
                                   rectifier: rectifier, rectifierOffset: tileOffset + offset)
                    qw += 16
                }
                for c in c0..<(c0 + 16) {
                    for q in qw..<gridW { dstRow[q * padded + c] = value(rowOffset + c * channelStride + q) }
                }
                c0 += 16
            }
            for c in c0..<channels {
                for q in 0..<gridW { dstRow[q * padded + c] = value(rowOffset + c * channelStride + q) }
            }
        }
    }
}
