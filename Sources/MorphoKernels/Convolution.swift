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
    ///
    /// Two ways to lay the output vectors over a tile: *row* vectors (16 consecutive voxels of
    /// one destination row, stored straight into the destination; a row's last partial vector
    /// goes through a small buffer) when the destination is dense along W; else *flat* vectors
    /// over the slab's positions (rows of `pitch`, so each row's last `pitch − grid.w` lanes
    /// are discarded) into a tile buffer, then scattered. Row vectors also win whenever they
    /// waste fewer lanes, e.g. any W that is a multiple of 16.
    static func runSpatial(
        _ pass: ConvolutionPass, weight: (Int, Int) -> Float, bias: UnsafePointer<Float>?,
        source: UnsafePointer<Float>, destination: UnsafeMutablePointer<Float>
    ) {
        let taps = pass.reduction
        let channels = pass.destinationChannels
        let blocks = channelBlocks(channels, taps: taps)
        let packed = allocateFloats(channels * taps + channels)
        defer { freeFloats(packed) }
        for b in blocks {
            for t in 0..<taps {
                for m in 0..<b.count { packed[b.weightOffset + t * b.count + m] = weight(b.first + m, t) }
            }
        }
        let biasValues = packed + channels * taps
        for c in 0..<channels { biasValues[c] = bias?[c] ?? 0 }

        let gridW = pass.w.grid
        let pitch = gridW + (pass.w.taps - 1) / pass.w.stride
        let fullVectors = gridW / 16
        let tailLanes = gridW % 16
        let rowLanes = 16 * (fullVectors + (tailLanes > 0 ? 1 : 0))
        // Row vectors cost rowLanes per row; flat ones pitch plus ~5 % for the scatter.
        let rowMode = pass.w.step == 1 && Double(rowLanes) <= 1.05 * Double(pitch)
        let tiling = ConvolutionTiling(pass, extraBytesPerRow: rowMode ? 0 : channels * pitch * 4)
        let slab = ConvolutionSlab(pass, rows: tiling.rows)
        let offsetTables = slab.tapOffsets(pass)
        // Flat mode: the whole tile; row mode: the partial last vector of each row.
        let bufferStride = rowMode ? 16 * tiling.rows : slab.vectors * 16
        let queue = TileQueue(count: tiling.count)
        let workers = Swift.min(Parallel.threads, queue.count)
        let sourceBatch = pass.sourceChannels * pass.sourceVolume
        let dstVolume = pass.destinationVolume
        let dstRow = pass.w.destination
        let dstSlice = pass.h.destination * dstRow

        offsetTables.withUnsafeBufferPointer { tables in
            Parallel.forEach(workers) { _ in
                let slabBuffer = allocateFloats(slab.floats)
                let buffer = allocateFloats(channels * bufferStride)
                defer { freeFloats(slabBuffer); freeFloats(buffer) }
                slabBuffer.update(repeating: 0, count: slab.floats)
                var loaded = [Int](repeating: Int.min, count: slab.depthSlots)

                while let index = queue.claim() {
                    let (n, qd0, qd1, qh0) = tiling.tile(index)
                    let rowsValid = Swift.min(tiling.rows, pass.h.grid - qh0)
                    for s in 0..<slab.depthSlots { loaded[s] = Int.min }
                    for qd in qd0..<qd1 {
                        for jd in 0..<pass.d.taps {
                            let z = qd * pass.d.stride + jd - pass.d.pad
                            if loaded[slab.slot(z)] != z {
                                slab.fill(pass, source: source + n * sourceBatch, z: z, qh0: qh0, into: slabBuffer)
                                loaded[slab.slot(z)] = z
                            }
                        }
                        let offsets = tables.baseAddress! + slab.table(forSlice: qd, pass) * taps
                        let zd = qd * pass.d.step + pass.d.origin
                        // Destination row of grid row ql, channel 0.
                        let plane = destination + n * channels * dstVolume + zd * dstSlice + pass.w.origin
                        @inline(__always) func destinationRow(_ ql: Int) -> UnsafeMutablePointer<Float> {
                            plane + ((qh0 + ql) * pass.h.step + pass.h.origin) * dstRow
                        }
                        var args = SpatialTileArguments(
                            taps: taps, offsets: offsets, weights: UnsafePointer(packed), bias: UnsafePointer(biasValues),
                            source: InlineArray(repeating: UnsafePointer(slabBuffer)), output: InlineArray(repeating: buffer),
                            outputStride: 0)
                        if rowMode {
                            for b in blocks {
                                args.weights = UnsafePointer(packed + b.weightOffset)
                                args.bias = UnsafePointer(biasValues + b.first)
                                // Full vectors, straight into the destination.
                                args.outputStride = dstVolume
                                let count = rowsValid * fullVectors
                                var i = 0
                                while i < count {
                                    let r = Swift.min(b.positions, count - i)
                                    for k in 0..<r {
                                        let (ql, v) = ((i + k) / fullVectors, (i + k) % fullVectors)
                                        args.source[k] = UnsafePointer(slabBuffer + ql * pitch + 16 * v)
                                        args.output[k] = destinationRow(ql) + b.first * dstVolume + 16 * v
                                    }
                                    ConvolutionMicrokernel.spatial(m: b.count, r: r, args)
                                    i += r
                                }
                                // Each row's partial last vector, into the buffer.
                                guard tailLanes > 0 else { continue }
                                args.outputStride = bufferStride
                                var ql = 0
                                while ql < rowsValid {
                                    let r = Swift.min(b.positions, rowsValid - ql)
                                    for k in 0..<r {
                                        args.source[k] = UnsafePointer(slabBuffer + (ql + k) * pitch + 16 * fullVectors)
                                        args.output[k] = buffer + b.first * bufferStride + 16 * (ql + k)
                                    }
                                    ConvolutionMicrokernel.spatial(m: b.count, r: r, args)
                                    ql += r
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
                            for b in blocks {
                                args.weights = UnsafePointer(packed + b.weightOffset)
                                args.bias = UnsafePointer(biasValues + b.first)
                                var v = 0
                                while v < vectors {
                                    let r = Swift.min(b.positions, vectors - v)
                                    for k in 0..<r {
                                        args.source[k] = UnsafePointer(slabBuffer + 16 * (v + k))
                                        args.output[k] = buffer + b.first * bufferStride + 16 * (v + k)
                                    }
                                    ConvolutionMicrokernel.spatial(m: b.count, r: r, args)
                                    v += r
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
                                        for qw in 0..<gridW { out[qw * pass.w.step] = t[qw] }
                                    }
                                }
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
        let tiling = ConvolutionTiling(pass, extraBytesPerRow: pitch * padded * 4)
        let slab = ConvolutionSlab(pass, rows: tiling.rows)
        let offsetTables = slab.tapOffsets(pass)
        let queue = TileQueue(count: tiling.count)
        let workers = Swift.min(Parallel.threads, queue.count)
        let sums = allocateFloats(workers * taps * padded)
        defer { freeFloats(sums) }
        sums.update(repeating: 0, count: workers * taps * padded)
        let sourceBatch = pass.sourceChannels * pass.sourceVolume
        let gridPlane = pass.h.grid * pass.w.grid
        let vectors = padded / 16

        offsetTables.withUnsafeBufferPointer { tables in
            Parallel.forEach(workers) { worker in
                let slabBuffer = allocateFloats(slab.floats)
                let grad = allocateFloats(slab.positions * padded)
                defer { freeFloats(slabBuffer); freeFloats(grad) }
                slabBuffer.update(repeating: 0, count: slab.floats)
                // Columns qw ≥ grid.w and channels ≥ Cdst stay 0, so garbage slab positions add nothing.
                grad.update(repeating: 0, count: slab.positions * padded)
                let acc = sums + worker * taps * padded
                var loaded = [Int](repeating: Int.min, count: slab.depthSlots)

                while let index = queue.claim() {
                    let (n, qd0, qd1, qh0) = tiling.tile(index)
                    let rowsValid = Swift.min(tiling.rows, pass.h.grid - qh0)
                    for s in 0..<slab.depthSlots { loaded[s] = Int.min }
                    for qd in qd0..<qd1 {
                        for jd in 0..<pass.d.taps {
                            let z = qd * pass.d.stride + jd - pass.d.pad
                            if loaded[slab.slot(z)] != z {
                                slab.fill(pass, source: source + n * sourceBatch, z: z, qh0: qh0, into: slabBuffer)
                                loaded[slab.slot(z)] = z
                            }
                        }
                        let offsets = tables.baseAddress! + slab.table(forSlice: qd, pass) * taps
                        transposeGradient(gradOutput, pass: pass, n: n, qd: qd, qh0: qh0, rows: rowsValid,
                                          pitch: pitch, padded: padded, gridPlane: gridPlane, into: grad)
                        let positions = rowsValid * pitch
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

    /// Channel-last copy of grid slice `qd`, rows `qh0 ..< qh0 + rows` of the output gradient
    /// `[N, C, gridD, gridH, gridW]` into `grad[ql·pitch + qw][c]` (rows of `padded` floats):
    /// 16×16 block transposes, scalar moves for the last channels and columns.
    static func transposeGradient(
        _ gradOutput: UnsafePointer<Float>, pass: ConvolutionPass, n: Int, qd: Int, qh0: Int, rows: Int,
        pitch: Int, padded: Int, gridPlane: Int, into grad: UnsafeMutablePointer<Float>
    ) {
        let channels = pass.destinationChannels
        let gridW = pass.w.grid
        let channelStride = pass.d.grid * gridPlane
        let tileBase = gradOutput + (n * channels * pass.d.grid + qd) * gridPlane + qh0 * gridW
        for ql in 0..<rows {
            let row = tileBase + ql * gridW
            let dstRow = grad + ql * pitch * padded
            var c0 = 0
            while c0 + 16 <= channels {
                var qw = 0
                while qw + 16 <= gridW {
                    transpose16x16(row + c0 * channelStride + qw, srcStride: channelStride,
                                   dstRow + qw * padded + c0, dstStride: padded)
                    qw += 16
                }
                for c in c0..<(c0 + 16) {
                    for q in qw..<gridW { dstRow[q * padded + c] = row[c * channelStride + q] }
                }
                c0 += 16
            }
            for c in c0..<channels {
                for q in 0..<gridW { dstRow[q * padded + c] = row[c * channelStride + q] }
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
