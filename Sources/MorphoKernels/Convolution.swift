/// Dense 2D/3D convolution (cross-correlation with zero padding, as PyTorch's `Conv3d`) and its
/// two gradients, on contiguous float32 tensors.
///
/// Layouts: input `[N, Cin, D, H, W]`, output `[N, Cout, outD, outH, outW]`, weight
/// `[Cout, Cin, kD, kH, kW]`, bias `[Cout]`; 2D is D = 1 with kernel depth 1 (see
/// `ConvGeometry.planar`). Any channel counts, kernel sizes, strides and paddings are exact;
/// the fast paths are kernel 1–3 and stride 1–2.
///
/// How: direct convolution, tiled over (batch, output slice, block of output rows). Each tile
/// copies the source rows it reads into a zero-padded, stride-phase-split slab
/// (`ConvolutionSlab`, at most ~1 MB per worker whatever the volume) and runs register-blocked
/// AVX-512 microkernels over it (`ConvolutionMicrokernels.swift`): 8 output channels × 48
/// positions per call for the forward pass and data gradient, 32 channels × 8 taps summed over
/// positions for the weight gradient. The data gradient of a stride-s convolution is split into
/// s³ stride-1 phases, one per output parity. Tiles are spread over `Parallel.threads` workers.
/// No allocation inside the loops; workspace is allocated once per call and worker.
public enum Convolution {
    /// `output = conv(input, weight) + bias`, overwriting `output`. `bias` may be nil (no bias).
    /// Output voxel `o` along an axis reads input voxels `o·stride + k − padding`, zero outside.
    public static func forward(
        _ g: ConvGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>
    ) {
        let pass = forwardPass(g)
        let k = pass.reduction
        runSpatial(pass, weight: { co, t in weight[co * k + t] }, bias: bias, source: input, destination: output)
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
        let phasesD = dataGradientPhases(input: g.inD, output: g.outD, kernel: g.kernel.d, stride: g.stride.d, padding: g.padding.d)
        let phasesH = dataGradientPhases(input: g.inH, output: g.outH, kernel: g.kernel.h, stride: g.stride.h, padding: g.padding.h)
        let phasesW = dataGradientPhases(input: g.inW, output: g.outW, kernel: g.kernel.w, stride: g.stride.w, padding: g.padding.w)
        // A parity no kernel tap reaches (kernel < stride) has gradient 0 and no pass writes it.
        if [phasesD, phasesH, phasesW].contains(where: { $0.contains { $0.axis.taps == 0 } }) {
            gradInput.update(repeating: 0, count: g.inputCount)
        }
        let (kh, kw) = (g.kernel.h, g.kernel.w)
        let kernelVolume = g.kernelVolume
        for pd in phasesD where pd.axis.taps > 0 {
            for ph in phasesH where ph.axis.taps > 0 {
                for pw in phasesW where pw.axis.taps > 0 {
                    let pass = ConvolutionPass(batch: g.n, sourceChannels: g.cout, destinationChannels: g.cin,
                                               d: pd.axis, h: ph.axis, w: pw.axis)
                    let (jd, jh, jw) = (pd.axis.taps, ph.axis.taps, pw.axis.taps)
                    let cin = g.cin
                    runSpatial(pass, weight: { ci, t in
                        // Tap t = ((co·Jd + a)·Jh + b)·Jw + c of this phase is kernel voxel
                        // (first + s·(J − 1 − j)) per axis: the flipped, strided sub-kernel.
                        let c = t % jw, b = (t / jw) % jh, a = (t / (jw * jh)) % jd, co = t / (jw * jh * jd)
                        let kd = pd.first + pd.step * (jd - 1 - a)
                        let khi = ph.first + ph.step * (jh - 1 - b)
                        let kwi = pw.first + pw.step * (jw - 1 - c)
                        return weight[(co * cin + ci) * kernelVolume + (kd * kh + khi) * kw + kwi]
                    }, bias: nil, source: gradOutput, destination: gradInput)
                }
            }
        }
    }

    /// `gradWeight[co, ci, k] = Σ_{n, o} gradOutput[n, co, o] · input[n, ci, o·stride + k − padding]`,
    /// overwriting `gradWeight` `[Cout, Cin, kD, kH, kW]`; and, when `gradBias` is non-nil,
    /// `gradBias[co] = Σ_{n, o} gradOutput[n, co, o]`, overwriting `[Cout]`.
    /// Sums run over the batch; partial sums per worker are float32, the bias sum per row too
    /// with float64 across rows.
    public static func backwardWeight(
        _ g: ConvGeometry, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?
    ) {
        runWeightGradient(forwardPass(g), source: input, gradOutput: gradOutput, gradWeight: gradWeight)
        if let gradBias {
            sumPlanes(gradOutput, batch: g.n, channels: g.cout, voxels: g.outVoxels, into: gradBias)
        }
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

    /// Runs a pass with the position-vectorised `SpatialTile` kernels, overwriting every
    /// destination voxel the pass's grid maps to. `weight(cdst, t)` gives the coefficient of tap `t`.
    static func runSpatial(
        _ pass: ConvolutionPass, weight: (Int, Int) -> Float, bias: UnsafePointer<Float>?,
        source: UnsafePointer<Float>, destination: UnsafeMutablePointer<Float>
    ) {
        let taps = pass.reduction
        let channels = pass.destinationChannels
        let blocks = channelBlocks(channels, taps: taps)
        let packed = allocateFloats(channels * taps)
        defer { freeFloats(packed) }
        for b in blocks {
            for t in 0..<taps {
                for m in 0..<b.count { packed[b.weightOffset + t * b.count + m] = weight(b.first + m, t) }
            }
        }

        let pitch = pass.w.grid + (pass.w.taps - 1) / pass.w.stride
        let rows = ConvolutionSlab.tileRows(pass, extraBytesPerRow: channels * pitch * 4)
        let slab = ConvolutionSlab(pass, rows: rows)
        let offsets = slab.tapOffsets(pass)
        let tileStride = slab.vectors * 16
        let queue = TileQueue(count: ConvolutionSlab.tileCount(pass, rows: rows))
        let workers = Swift.min(Parallel.threads, queue.count)
        let sourceBatch = pass.sourceChannels * pass.sourceVolume
        let (dstPlane, dstRow) = (pass.d.destination * pass.h.destination * pass.w.destination, pass.w.destination)

        offsets.withUnsafeBufferPointer { offsetBuffer in
            let offsets = offsetBuffer.baseAddress!
            Parallel.forEach(workers) { _ in
                let slabBuffer = allocateFloats(slab.floats)
                let tile = allocateFloats(channels * tileStride)
                defer { freeFloats(slabBuffer); freeFloats(tile) }
                let filled = pass.sourceChannels * slab.channelStride
                (slabBuffer + filled).update(repeating: 0, count: slab.floats - filled)

                while let index = queue.claim() {
                    let (n, qd, qh0) = ConvolutionSlab.tile(index, pass, rows: rows)
                    slab.fill(pass, source: source + n * sourceBatch, qd: qd, qh0: qh0, into: slabBuffer)
                    let rowsValid = Swift.min(rows, pass.h.grid - qh0)
                    let vectors = (rowsValid * slab.pitch + 15) / 16
                    for b in blocks {
                        var v = 0
                        while v < vectors {
                            let r = Swift.min(b.positions, vectors - v)
                            ConvolutionMicrokernel.spatial(m: b.count, r: r, SpatialTileArguments(
                                taps: taps, offsets: offsets, source: slabBuffer + 16 * v,
                                weights: packed + b.weightOffset,
                                output: tile + b.first * tileStride + 16 * v, outputStride: tileStride))
                            v += r
                        }
                    }
                    // Scatter the valid positions (qw < grid.w) to the destination, adding the bias.
                    let zd = qd * pass.d.step + pass.d.origin
                    for c in 0..<channels {
                        let b = bias?[c] ?? 0
                        let plane = destination + (n * channels + c) * dstPlane + zd * pass.h.destination * dstRow
                        for ql in 0..<rowsValid {
                            let yd = (qh0 + ql) * pass.h.step + pass.h.origin
                            let out = plane + yd * dstRow + pass.w.origin
                            let t = tile + c * tileStride + ql * slab.pitch
                            if pass.w.step == 1 {
                                for qw in 0..<pass.w.grid { out[qw] = t[qw] + b }
                            } else {
                                for qw in 0..<pass.w.grid { out[qw * pass.w.step] = t[qw] + b }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Runs the weight gradient of a forward-shaped pass with the channel-vectorised
    /// `WeightGradientTile` kernels: per worker, running sums `[tap][channel]` over its tiles,
    /// then one reduction over workers into `gradWeight` `[Cdst, K]`.
    static func runWeightGradient(
        _ pass: ConvolutionPass, source: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gradWeight: UnsafeMutablePointer<Float>
    ) {
        let taps = pass.reduction
        let channels = pass.destinationChannels
        let padded = (channels + 15) / 16 * 16
        let pitch = pass.w.grid + (pass.w.taps - 1) / pass.w.stride
        let rows = ConvolutionSlab.tileRows(pass, extraBytesPerRow: pitch * padded * 4)
        let slab = ConvolutionSlab(pass, rows: rows)
        let offsets = slab.tapOffsets(pass)
        let queue = TileQueue(count: ConvolutionSlab.tileCount(pass, rows: rows))
        let workers = Swift.min(Parallel.threads, queue.count)
        let sums = allocateFloats(workers * taps * padded)
        defer { freeFloats(sums) }
        sums.update(repeating: 0, count: workers * taps * padded)
        let sourceBatch = pass.sourceChannels * pass.sourceVolume
        let gridPlane = pass.h.grid * pass.w.grid
        let vectors = padded / 16

        offsets.withUnsafeBufferPointer { offsetBuffer in
            let offsets = offsetBuffer.baseAddress!
            Parallel.forEach(workers) { worker in
                let slabBuffer = allocateFloats(slab.floats)
                let grad = allocateFloats(slab.positions * padded)
                defer { freeFloats(slabBuffer); freeFloats(grad) }
                let filled = pass.sourceChannels * slab.channelStride
                (slabBuffer + filled).update(repeating: 0, count: slab.floats - filled)
                // Columns qw ≥ grid.w and channels ≥ Cdst stay 0, so garbage slab positions add nothing.
                grad.update(repeating: 0, count: slab.positions * padded)
                let acc = sums + worker * taps * padded

                while let index = queue.claim() {
                    let (n, qd, qh0) = ConvolutionSlab.tile(index, pass, rows: rows)
                    slab.fill(pass, source: source + n * sourceBatch, qd: qd, qh0: qh0, into: slabBuffer)
                    let rowsValid = Swift.min(rows, pass.h.grid - qh0)
                    // Channel-last copy of the tile's output gradient.
                    for c in 0..<channels {
                        let plane = gradOutput + ((n * channels + c) * pass.d.grid + qd) * gridPlane
                        for ql in 0..<rowsValid {
                            let row = plane + (qh0 + ql) * pass.w.grid
                            let dst = grad + ql * slab.pitch * padded + c
                            for qw in 0..<pass.w.grid { dst[qw * padded] = row[qw] }
                        }
                    }
                    let positions = rowsValid * slab.pitch
                    var v = 0
                    while v < vectors {
                        let vb = Swift.min(ConvolutionMicrokernel.weightGradientVectors, vectors - v)
                        // Keep the swept gradient rows (chunk · vb · 64 bytes) in L1.
                        let chunk = 256 / vb
                        var p0 = 0
                        while p0 < positions {
                            let count = Swift.min(chunk, positions - p0)
                            var t = 0
                            while t < taps {
                                let r = Swift.min(ConvolutionMicrokernel.weightGradientTaps, taps - t)
                                ConvolutionMicrokernel.weightGradient(v: vb, r: r, WeightGradientTileArguments(
                                    positions: count, gradOut: grad + p0 * padded + 16 * v, gradOutStride: padded,
                                    slab: slabBuffer + p0, offsets: offsets + t,
                                    accumulator: acc + t * padded + 16 * v, accumulatorStride: padded))
                                t += r
                            }
                            p0 += count
                        }
                        v += vb
                    }
                }
            }
        }
        // gradWeight[c, t] = Σ_workers sums[worker][t][c].
        Parallel.forRanges(channels, grain: 1) { range in
            for c in range {
                for t in 0..<taps {
                    var s: Float = 0
                    for worker in 0..<workers { s += sums[(worker * taps + t) * padded + c] }
                    gradWeight[c * taps + t] = s
                }
            }
        }
    }

    /// `out[c] = Σ_{n, v} x[n, c, v]` for `x` `[N, C, V]`: float32 vector sums per 4096 voxels,
    /// float64 across them.
    static func sumPlanes(_ x: UnsafePointer<Float>, batch: Int, channels: Int, voxels: Int, into out: UnsafeMutablePointer<Float>) {
        Parallel.forRanges(channels, grain: 1) { range in
            for c in range {
                var total = 0.0
                for n in 0..<batch {
                    let plane = x + (n * channels + c) * voxels
                    var i = 0
                    while i < voxels {
                        let end = Swift.min(voxels, i + 4096)
                        var acc = ConvVector()
                        while i + 16 <= end {
                            acc += loadVector(plane + i)
                            i += 16
                        }
                        var s = acc.sum()
                        while i < end { s += plane[i]; i += 1 }
                        total += Double(s)
                    }
                }
                out[c] = Float(total)
            }
        }
    }
}
