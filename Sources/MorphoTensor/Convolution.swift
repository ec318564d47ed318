import MorphoKernels

// Differentiable 2D/3D convolution and transposed convolution over the `Convolution` kernels
// (PyTorch semantics and weight layouts). A transposed convolution is the adjoint of the
// convolution that maps its output grid back onto its input grid, so both ops run on the same
// three kernels with the roles of forward and data gradient exchanged. Every pass reports its
// direct-convolution FLOPs to `FLOPCounting` (the convention is stated on `FLOPCount`).

/// The kernel geometry of a convolution from `large` `[N, Cin, spatial...]` to the small grid,
/// with weight `[Cout, Cin, k...]`; 2D tensors are the D = 1 case.
private func geometry(_ shape: [Int], cout: Int, weight: [Int], stride: Int, padding: Int) -> ConvGeometry {
    let nd = shape.count - 2
    precondition(nd == 2 || nd == 3, "convolution expects [N, C, H, W] or [N, C, D, H, W], got \(shape)")
    precondition(weight.count == nd + 2, "a \(nd)D convolution needs a weight [Cout, Cin, \(nd) kernel sizes], got \(weight)")
    let s = shape.dropFirst(2).map { $0 }, k = weight.dropFirst(2).map { $0 }
    if nd == 2 {
        return ConvGeometry(n: shape[0], cin: shape[1], cout: cout, inD: 1, inH: s[0], inW: s[1],
                            kernel: (1, k[0], k[1]), stride: (1, stride, stride), padding: (0, padding, padding))
    }
    return ConvGeometry(n: shape[0], cin: shape[1], cout: cout, inD: s[0], inH: s[1], inW: s[2],
                        kernel: (k[0], k[1], k[2]), stride: (stride, stride, stride), padding: (padding, padding, padding))
}

private func outputShape(_ g: ConvGeometry, rank: Int, channels: Int) -> [Int] {
    rank == 4 ? [g.n, channels, g.outH, g.outW] : [g.n, channels, g.outD, g.outH, g.outW]
}

/// Convolution (cross-correlation, as PyTorch's `conv2d`/`conv3d`) of `x` `[N, Cin, H, W]` or
/// `[N, Cin, D, H, W]` with `weight` `[Cout, Cin, kH, kW]` / `[Cout, Cin, kD, kH, kW]`, plus
/// `bias` `[Cout]`. `stride` and zero `padding` (voxels) are the same on every spatial axis;
/// out = ⌊(in + 2·padding − k)/stride⌋ + 1 per axis. Differentiable in x, weight and bias.
///
/// `activation` `.leaky(s)` (s ≥ 0; 0 is ReLU) rectifies the result in place: the backward
/// needs only the output's sign, kept as one bit per value (`RectifierMask`), so neither the
/// pre-activation nor the output is kept for it (VoxelMorph's conv → LeakyReLU blocks). A
/// learned slope cannot be recovered that way and is refused.
public func conv(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                 activation: Rectifier = .none) -> Tensor {
    conv(parts: [x], weight, bias, stride: stride, padding: padding, activation: activation)
}

/// `conv(Tensor.concat(parts, axis: 1), weight, bias, …)` without the concatenation: the kernels
/// read each part `[N, C_k, spatial...]` (same N and grid) in place and the backward writes each
/// part's gradient straight into its own tensor. A decoder convolution after a skip connection
/// thereby keeps neither the concatenated input nor its gradient (at 160×192×224 with 16 + 32
/// channels, 1.3 GB each). Differentiable in every part, weight and bias.
public func conv(parts: [Tensor], _ weight: Tensor, _ bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                 activation: Rectifier = .none) -> Tensor {
    convolution(ConvolutionInput(parts: parts, upsampledTo: nil), weight, bias, stride: stride, padding: padding, activation: activation)
}

/// `conv(parts: [resize(coarse, to: skip.spatialShape, mode: .nearest), skip], …)`, VoxelMorph's
/// decoder step after an up-sampling, without keeping the up-sampled tensor. An exact ×2
/// up-sampling into a Winograd layer never builds it: the forward transforms the coarse grid
/// and the data gradient sums onto it in the output transform (27 of 64 products for those
/// channels, `Convolution.forward(upsampling:…)`, `backwardDataOfUpsampledPart`), and a 3D
/// weight gradient also transforms the coarse grid. Otherwise each pass that reads it builds
/// it for the call (pooled memory), and the coarse gradient goes through 16 up-sampled
/// channels at a time. At 160×192×224 with 32 coarse channels that is 880 MB not held from the
/// forward to the backward. `coarse` `[N, Cc, coarse grid...]`, `skip` `[N, Cs, grid...]`,
/// weight `[Cout, Cc + Cs, k...]`. Differentiable in coarse, skip, weight and bias.
public func conv(upsampling coarse: Tensor, skip: Tensor, _ weight: Tensor, _ bias: Tensor? = nil, stride: Int = 1,
                 padding: Int = 0, activation: Rectifier = .none) -> Tensor {
    precondition(coarse.rank == skip.rank && coarse.shape[0] == skip.shape[0],
                 "conv(upsampling:) of \(coarse.shape) onto \(skip.shape): batch or rank differ")
    return convolution(ConvolutionInput(parts: [coarse, skip], upsampledTo: skip.spatialShape), weight, bias, stride: stride,
                       padding: padding, activation: activation)
}

/// Scratch for the kernels from the tensor pool (`StoragePool`): mapped memory reused from
/// call to call, counted with the tensors' bytes.
private let pooledScratch: Convolution.Scratch = { count, body in
    let storage = TensorStorage(uninitializedCount: count)
    withExtendedLifetime(storage) { body(storage.pointer) }
}

/// What a convolution op reads as its input: tensors taken as their channel concatenation, the
/// first of which may be read up-sampled (nearest) onto the grid of the others.
private struct ConvolutionInput {
    /// The graph inputs, in channel order.
    let parts: [Tensor]
    /// The grid the first part is up-sampled to (nearest, `resize`); nil: every part as it is.
    let upsampledTo: [Int]?

    init(parts: [Tensor], upsampledTo: [Int]?) {
        precondition(!parts.isEmpty, "conv of no input parts")
        self.parts = parts
        self.upsampledTo = upsampledTo
        let first = parts[0]
        for p in parts.dropFirst(upsampledTo == nil ? 0 : 1) {
            precondition(p.rank == first.rank && p.shape[0] == first.shape[0] && p.spatialShape == grid,
                         "conv input parts \(parts.map(\.shape)) differ in batch or grid")
        }
    }

    var channels: [Int] { parts.map { $0.shape[1] } }
    /// The spatial grid the convolution reads.
    var grid: [Int] { upsampledTo ?? parts[0].spatialShape }
    /// The concatenated input's shape `[N, ΣC_k, grid...]`.
    var shape: [Int] { [parts[0].shape[0], channels.reduce(0, +)] + grid }
    /// What the data gradients need of the parts (not their values).
    var layout: ConvolutionInputLayout {
        ConvolutionInputLayout(shapes: parts.map(\.shape), wantsGradient: parts.map(\.requiresGrad), upsampledTo: upsampledTo)
    }

    /// `Convolution.forward` of this input: an up-sampled first part is handed over coarse (the
    /// kernels read it up-sampled, or build it for the call).
    func forward(_ g: ConvGeometry, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                 rectifierSlope: Float?) {
        withParts { coarse, source in
            if let coarse {
                Convolution.forward(g, upsampling: coarse.base, coarseChannels: coarse.channels, coarseExtent: coarse.extent,
                                    skip: source, weight: weight, bias: bias, output: output, rectifierSlope: rectifierSlope,
                                    scratch: pooledScratch)
            } else {
                Convolution.forward(g, inputs: source, weight: weight, bias: bias, output: output, rectifierSlope: rectifierSlope)
            }
        }
    }

    /// `Convolution.backwardWeight` of this input, as `forward`.
    func backwardWeight(_ g: ConvGeometry, gradOutput: UnsafePointer<Float>, gradWeight: UnsafeMutablePointer<Float>,
                        gradBias: UnsafeMutablePointer<Float>?) {
        withParts { coarse, source in
            if let coarse {
                Convolution.backwardWeight(g, upsampling: coarse.base, coarseChannels: coarse.channels, coarseExtent: coarse.extent,
                                           skip: source, gradOutput: gradOutput, gradWeight: gradWeight, gradBias: gradBias,
                                           scratch: pooledScratch)
            } else {
                Convolution.backwardWeight(g, inputs: source, gradOutput: gradOutput, gradWeight: gradWeight, gradBias: gradBias)
            }
        }
    }

    /// `body` on the up-sampled first part (nil without one) and a source over the other parts.
    private func withParts(_ body: ((base: UnsafePointer<Float>, channels: Int, extent: SpatialExtent)?, ConvolutionSource) -> Void) {
        let upsampled = upsampledTo != nil
        let rest = upsampled ? Array(parts.dropFirst()) : parts
        let source = ConvolutionSource(parts: rest.map { ConvolutionSource.Part(UnsafePointer($0.storage.pointer), channels: $0.shape[1]) },
                                       volume: grid.reduce(1, *))
        withExtendedLifetime(parts) {
            let first = parts[0]
            body(upsampled ? (UnsafePointer(first.storage.pointer), first.shape[1], SpatialExtent(first.spatialShape)) : nil, source)
        }
    }
}

/// The shapes of a convolution's input parts and which of them want a gradient: all the data
/// gradients need, so the backward can let the parts' values go after the weight gradient.
private struct ConvolutionInputLayout {
    /// `[N, C_k, spatial...]` per part (the first one coarse when `upsampledTo` is set).
    let shapes: [[Int]]
    let wantsGradient: [Bool]
    /// As `ConvolutionInput.upsampledTo`.
    let upsampledTo: [Int]?
    /// d(loss)/d(part k), whose channels start at `offset` in the concatenation, of the
    /// convolution `g` with `weight` whose output gradient is `gradOutput`: each part's own
    /// channels of the data gradient, an up-sampled part's taken back onto its coarse grid.
    func gradient(_ k: Int, offset: Int, _ g: ConvGeometry, gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>) -> Tensor {
        let shape = shapes[k]
        let channels = offset ..< offset + shape[1]
        FLOPCounting.record(.dataGradient, g.flops * Double(channels.count) / Double(g.cin))
        return Tensor(shape: shape) { dx in
            if k == 0 && upsampledTo != nil {
                Convolution.backwardDataOfUpsampledPart(g, gradOutput: gradOutput, weight: weight, inputChannels: channels,
                                                        coarseExtent: SpatialExtent(Array(shape.dropFirst(2))), gradCoarse: dx,
                                                        scratch: pooledScratch)
            } else {
                Convolution.backwardData(g, gradOutput: gradOutput, weight: weight, inputChannels: channels, gradInput: dx)
            }
        }
    }
}

/// The convolution of `input` (see `conv(parts:…)`), forward and backward.
///
/// What the backward holds: the weight, the parts until the weight gradient has read them, and
/// with a fused rectifier the output's sign pattern (`RectifierMask`, 1/32 of its bytes), not
/// the output. It applies the rectifier's derivative to the gradient it is handed, in place
/// when it holds the only reference (else into a copy), so the kernels read plain values.
private func convolution(_ input: ConvolutionInput, _ weight: Tensor, _ bias: Tensor?, stride: Int, padding: Int,
                         activation: Rectifier) -> Tensor {
    let shape = input.shape
    let cout = weight.shape[0]
    let g = geometry(shape, cout: cout, weight: weight.shape, stride: stride, padding: padding)
    precondition(weight.shape[1] == shape[1], "conv of \(shape) with weight \(weight.shape): input channels differ")
    precondition(bias.map { $0.count == cout } ?? true, "conv bias \(bias!.shape) for \(cout) output channels")
    var slope: Float?
    switch activation {
    case .none: slope = nil
    case .leaky(let s):
        precondition(s >= 0, "conv fuses a leaky rectifier with slope >= 0 only (the sign is read from the output), got \(s)")
        slope = s
    case .learned: preconditionFailure("conv cannot fuse a learned rectifier slope; apply prelu after it")
    }
    let y = Tensor(shape: outputShape(g, rank: shape.count, channels: cout)) { out in
        input.forward(g, weight: weight.storage.pointer, bias: bias?.storage.pointer, output: out, rectifierSlope: slope)
    }
    FLOPCounting.record(.forward, g.flops)
    var inputs = input.parts + [weight]
    if let bias { inputs.append(bias) }
    guard Tensor.recordsGradient(of: inputs) else { return y }
    let mask = slope.map { RectifierMask(output: y.storage.pointer, count: y.count, slope: $0) }
    let layout = input.layout
    // Set to nil once the weight gradient has read the parts.
    var held: ConvolutionInput? = input
    return Tensor.recordOwningGradient(y, inputs: inputs) { grad in
        if let mask {
            if grad.hasUniqueStorage() {
                mask.rectify(grad.storage.pointer)
            } else {
                let shared = grad
                grad = Tensor(shape: shared.shape) { mask.rectify(shared.storage.pointer, into: $0) }
            }
        }
        let dy = grad.storage.pointer
        // The weight gradient first: an up-sampled part it rebuilds is gone before the data
        // gradients are allocated.
        var dw: Tensor?, db: Tensor?
        if weight.requiresGrad || bias?.requiresGrad == true {
            let gradBias = bias?.requiresGrad == true ? TensorStorage(uninitializedCount: cout) : nil
            dw = Tensor(shape: weight.shape) { dw in
                held!.backwardWeight(g, gradOutput: dy, gradWeight: dw, gradBias: gradBias?.pointer)
            }
            FLOPCounting.record(.weightGradient, g.flops)
            db = gradBias.map { Tensor(shape: [cout], storage: $0) }
        }
        // The data gradients read only `grad` and the weight: the parts go now, and a part
        // nothing else holds (the previous layer's output, whose own backward keeps a mask)
        // is freed before they are allocated.
        held = nil
        // One data-gradient pass per part: each re-reads `grad` into its slab, k fills for k
        // parts instead of one. A single pass writing k destinations would need channel blocks
        // that may straddle parts; not done.
        var grads: [Tensor?] = []
        var offset = 0
        for k in layout.shapes.indices {
            grads.append(layout.wantsGradient[k] ? layout.gradient(k, offset: offset, g, gradOutput: dy, weight: weight.storage.pointer) : nil)
            offset += layout.shapes[k][1]
        }
        grads.append(dw)
        if bias != nil { grads.append(db) }
        return grads
    }
}

/// Transposed convolution (PyTorch's `conv_transpose2d/3d`, the adjoint of `conv`) of `x`
/// `[N, Cin, spatial...]` with `weight` `[Cin, Cout, k...]` (PyTorch's layout) plus `bias`
/// `[Cout]`: out = (in − 1)·stride − 2·padding + k + outputPadding per axis. The U-Net decoder's
/// up-sampling: kernel 2 stride 2, or kernel 3 stride 2 padding 1 outputPadding 1 (MONAI),
/// both doubling the size. `outputSize` (spatial) picks outputPadding per axis instead, e.g. to
/// land on the odd size of a skip connection. Differentiable in x, weight and bias.
public func convTransposed(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                           outputPadding: Int = 0, outputSize: [Int]? = nil) -> Tensor {
    let nd = x.rank - 2
    precondition(weight.rank == x.rank && weight.shape[0] == x.shape[1],
                 "convTransposed of \(x.shape) needs a weight [\(x.shape[1]), Cout, k...], got \(weight.shape)")
    let cout = weight.shape[1]
    let kernel = Array(weight.shape.dropFirst(2))
    let size = outputSize ?? (0..<nd).map { (x.shape[$0 + 2] - 1) * stride - 2 * padding + kernel[$0] + outputPadding }
    // The convolution this op transposes: from the output grid (cout channels) to x's grid.
    let g = geometry([x.shape[0], cout] + size, cout: x.shape[1], weight: weight.shape, stride: stride, padding: padding)
    let back = outputShape(g, rank: x.rank, channels: x.shape[1])
    precondition(back == x.shape, "convTransposed output size \(size) does not map back onto \(x.shape) (stride \(stride), padding \(padding), kernel \(kernel))")
    precondition(bias.map { $0.count == cout } ?? true, "convTransposed bias \(bias!.shape) for \(cout) output channels")
    let spatial = size.reduce(1, *)
    let y = Tensor(shape: [x.shape[0], cout] + size) { out in
        Convolution.backwardData(g, gradOutput: x.storage.pointer, weight: weight.storage.pointer, gradInput: out)
        if let bias { addChannelBias(out, bias.storage.pointer, batch: x.shape[0], channels: cout, voxels: spatial) }
    }
    FLOPCounting.record(.forward, g.flops)
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    return Tensor.record(y, inputs: inputs) { dy in
        let dx = x.requiresGrad ? Tensor(shape: x.shape) { dx in
            Convolution.forward(g, input: dy.storage.pointer, weight: weight.storage.pointer, bias: nil, output: dx)
            FLOPCounting.record(.dataGradient, g.flops)
        } : nil
        let dw = weight.requiresGrad ? Tensor(shape: weight.shape) { dw in
            Convolution.backwardWeight(g, input: dy.storage.pointer, gradOutput: x.storage.pointer, gradWeight: dw, gradBias: nil)
            FLOPCounting.record(.weightGradient, g.flops)
        } : nil
        guard let bias else { return [dx, dw] }
        let db = bias.requiresGrad ? Tensor(shape: [cout]) { db in
            channelSums(dy.storage.pointer, batch: x.shape[0], channels: cout, voxels: spatial, into: db)
        } : nil
        return [dx, dw, db]
    }
}

/// x[n, c, v] += bias[c] over `[N, C, V]`.
private func addChannelBias(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, batch: Int, channels: Int, voxels: Int) {
    Parallel.forEach(batch * channels) { plane in
        let b = bias[plane % channels], p = x + plane * voxels
        for i in 0..<voxels { p[i] += b }
    }
}

/// out[c] = Σ_{n, v} x[n, c, v] for `[N, C, V]`, in Float blocks of 16 summed in Double.
private func channelSums(_ x: UnsafePointer<Float>, batch: Int, channels: Int, voxels: Int, into out: UnsafeMutablePointer<Float>) {
    Parallel.forEach(channels) { c in
        var total = 0.0
        for n in 0..<batch { total += Double(blockSum(x + (n * channels + c) * voxels, voxels, shift: 0, square: false)) }
        out[c] = Float(total)
    }
}
