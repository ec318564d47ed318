import Foundation

/// The weight gradient of a Winograd layer (3×3×3, stride 1, padding 1) in the same
/// F(2×2×2, 3×3×3) algebra as its forward pass. Along one axis the forward pass is
/// `y = Aᵀ [(G g) ⊙ (Bᵀ x)]`, linear in the kernel g, so for an output tile's gradient dy
///
///     ∂L/∂g = Gᵀ [ (A dy) ⊙ (Bᵀ x) ],     A dy = (dy₀, dy₀ + dy₁, dy₀ − dy₁, −dy₁),
///     Gᵀ u = (u₀ + ½u₁ + ½u₂,  ½u₁ − ½u₂,  ½u₁ + ½u₂ + u₃),
///
/// taken along all three axes and summed over tiles: the sum over tiles becomes 64 independent
/// products (one per transform point ξ) `[Cs × tiles]·[tiles × Cd]`, 64 multiplies per tile per
/// channel pair instead of 216 for the direct gradient. Per block of `tileBlock` tiles a worker
/// transforms the input patches (`transformInput`, as the forward pass) into `V[ξ][s][tile]`
/// and the output gradient's 2×2×2 tiles into `W[ξ][tile][d]` (the raw tiles made channel-last
/// by 16×16 transposes, then transformed on vectors of 16 channels), then adds `V[ξ]·W[ξ]` into its running sums `[ξ][s][d]` with the direct weight
/// gradient's `WeightGradientTile` (source channels as its taps, tiles as its positions). The
/// groups' sums are added and transformed back (Gᵀ · Gᵀ · Gᵀ) once per call.
///
/// Blocks go in runs of `claimGrain` consecutive blocks, and the runs in groups with their own
/// sums (`PartialSums`), claimed first come first served: the gradient is the same bit for bit
/// in every run with the same thread count, as the direct kernel's, and a worker's consecutive
/// blocks share source rows.
/// Workspace per worker: `4·64·(Cs·(tileBlock + 16) + (tileBlock + 16)·Cd′ + Cs·Cd′)` bytes
/// plus 14 KB of row scratch (Cd′ = Cd rounded up to 16; 1.1 MB for 32 → 32 channels).
extension WinogradConvolution {
    /// Whether the weight gradient of a layer runs here: the layers `applies` takes, with a
    /// kernel of depth 3 (the planar F(2×2, 3×3) has no weight gradient here) and a source
    /// read without a rectifier.
    static func appliesToWeightGradient(_ g: ConvGeometry, source: ConvolutionSource) -> Bool {
        g.kernel.d == 3 && source.rectifier == nil && weightGradientEnabled
            && applies(g, sourceChannels: g.cin, destinationChannels: g.cout)
    }

    /// False when `MORPHOSEG_CONV_WEIGHT=direct` (to measure the direct weight gradient).
    nonisolated(unsafe) static var weightGradientEnabled: Bool = ProcessInfo.processInfo.environment["MORPHOSEG_CONV_WEIGHT"] != "direct"

    /// Overwrites `gradWeight` `[Cd, Cs, 3, 3, 3]` with `Σ_{n, voxel} ∂L/∂y[d] · x[s](voxel + tap − 1)`
    /// and `gradBias` `[Cd]` (when given) with `Σ ∂L/∂y[d]`, for `gradOutput` `[N, Cd, D, H, W]` read
    /// times the rectifier's derivative when `rectifier` is given, and the source `[N, Cs, D, H, W]`.
    /// With `upsampled` (as for `run`), source channels `0 ..< upsampled.channels` are that part
    /// read up-sampled ×2 from its coarse grid, and their sums at the points where it is zero are
    /// not computed (they stay 0).
    static func runWeightGradient(
        _ plan: Plan, source: ConvolutionSource, upsampled: UpsampledPart? = nil, gradOutput: UnsafePointer<Float>,
        rectifier: Rectification?, gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?
    ) {
        precondition(plan.kernelDepth == 3 && source.rectifier == nil, "Winograd weight gradient: 3D layers, unrectified source")
        let (cs, cd, points) = (plan.sourceChannels, plan.destinationChannels, plan.points)
        let cu = upsampled?.channels ?? 0
        precondition(upsampled?.fits(plan) ?? true, "an up-sampled Winograd part is exactly ×2 onto the grid")
        precondition(cu + source.channels == cs, "Winograd source channels \(cu) + \(source.channels) for a pass of \(cs)")
        let padded = (cd + 15) / 16 * 16
        let stride = plan.blockStride
        let blockCount = (plan.tileCount + tileBlock - 1) / tileBlock
        let workers = Swift.min(Parallel.threads, blockCount)
        let sumsPerGroup = points * cs * padded + padded
        let grain = claimGrain(blocks: blockCount, workers: workers)
        let partial = PartialSums(items: (blockCount + grain - 1) / grain, workers: workers,
                                  flops: 2 * Double(plan.tileCount * points * cs * cd), floatsPerGroup: sumsPerGroup)
        let sums = allocateFloats(partial.groups * sumsPerGroup)  // each group's zeroed when claimed
        defer { freeFloats(sums) }
        let queue = TileQueue(count: partial.groups)
        let vectors = padded / 16
        let sourceBlocks = ConvolutionMicrokernel.weightGradientTapBlocks(cs)
        // At the up-sampled part's zero points: the other channels only.
        let restBlocks = cu == 0 ? sourceBlocks : ConvolutionMicrokernel.weightGradientTapBlocks(cs - cu).map { ($0.lowerBound + cu)..<($0.upperBound + cu) }
        let volume = plan.depth * plan.height * plan.width

        Parallel.forEach(workers) { _ in
            let (vPoint, wPoint) = (cs * stride + 16, stride * padded + 16)
            let v = allocateFloats(points * vPoint)
            let w = allocateFloats(points * wPoint)
            // One 16-channel group's gradient rows `[channel][32 voxels]`, and the same rows
            // channel-last, `[row (pz, py)][32 voxels][16 channels]`.
            let staging = allocateFloats(16 * 32)
            let channelLast = allocateFloats(4 * 32 * 16)
            let rows = allocateFloats(16 * 64 + 96)
            let offsets = UnsafeMutablePointer<Int>.allocate(capacity: cs)
            let channelBases = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: cs)
            defer {
                freeFloats(v); freeFloats(w); freeFloats(staging); freeFloats(channelLast); freeFloats(rows)
                offsets.deallocate(); channelBases.deallocate()
            }
            v.update(repeating: 0, count: points * vPoint)
            w.update(repeating: 0, count: points * wPoint)
            staging.update(repeating: 0, count: 16 * 32)
            rows.update(repeating: 0, count: 16 * 64)
            for s in 0..<cs { offsets[s] = s * stride }
            var loadedItem = -1

            while let claimed = queue.claim() {
                let acc = sums + claimed * sumsPerGroup
                acc.update(repeating: 0, count: sumsPerGroup)
                let biasAcc = acc + points * cs * padded
                let runs = partial.range(claimed)
                for block in (runs.lowerBound * grain)..<Swift.min(blockCount, runs.upperBound * grain) {
                    let first = block * tileBlock
                    let count = Swift.min(tileBlock, plan.tileCount - first)
                    forEachSegment(plan, first: first, count: count) { segment in
                        if segment.n != loadedItem {
                            source.channelBases(batchItem: segment.n, into: channelBases + cu)
                            loadedItem = segment.n
                        }
                        upsampled?.transformInput(plan, segment: segment, rows: rows, into: v, channelStride: stride, pointStride: vPoint)
                        for s in cu..<cs {
                            transformInput(plan, segment: segment, channel: UnsafePointer(channelBases[s]), rectifier: nil,
                                           rows: rows, into: v + s * stride, pointStride: vPoint)
                        }
                        let item = segment.n * cd * volume
                        var g0 = 0
                        while g0 < cd {
                            let group = Swift.min(16, cd - g0)
                            gatherGradient(plan, segment: segment, gradOutput: gradOutput + item + g0 * volume, volume: volume,
                                           channels: group, rectifier: rectifier.map { (UnsafePointer($0.output + item + g0 * volume), $0.slope) },
                                           staging: staging, into: channelLast, biasSums: biasAcc + g0)
                            transformGradientTiles(UnsafePointer(channelLast), tiles: segment.count,
                                                   into: w + segment.lane * padded + g0, tileStride: padded, pointStride: wPoint)
                            g0 += 16
                        }
                    }
                    // acc[ξ][s][d] += Σ_tiles V[ξ][s][tile] · W[ξ][tile][d].
                    for xi in 0..<points {
                        let blocks = cu > 0 && UpsampledPart.isZeroPoint(xi, deep: true) ? restBlocks : sourceBlocks
                        var vv = 0
                        while vv < vectors {
                            let vb = Swift.min(ConvolutionMicrokernel.weightGradientVectors, vectors - vv)
                            for block in blocks {
                                let s0 = block.lowerBound
                                ConvolutionMicrokernel.weightGradient(v: vb, r: block.count, WeightGradientTileArguments(
                                    positions: count, gradOut: w + xi * wPoint + 16 * vv, gradOutStride: padded,
                                    slab: v + xi * vPoint, offsets: offsets + s0,
                                    accumulator: acc + (xi * cs + s0) * padded + 16 * vv, accumulatorStride: padded))
                            }
                            vv += vb
                        }
                    }
                }
            }
        }
        // Add the groups' sums into group 0's, in group order.
        partial.reduce(sums, floatsPerGroup: sumsPerGroup)
        transformWeightGradient(plan, sums: sums, padded: padded, into: gradWeight)
        if let gradBias {
            let biasSums = sums + points * cs * padded
            for d in 0..<cd { gradBias[d] = biasSums[d] }
        }
    }

    /// The output gradient of the segment's 16 tiles for `channels` (≤ 16) consecutive channels,
    /// channel-last: `into[(pz·2 + py)·512 + voxel·16 + k]` is voxel `2·tx + voxel` of row
    /// (z = 2·tz + pz, y = 2·ty + py) of channel k, times the rectifier's derivative when given;
    /// voxels past the grid's edge or past the segment's tiles are 0 (channels k ≥ `channels` are
    /// left unspecified).
    /// Adds each channel's sum to `biasSums[k]`.
    @inline(__always)
    static func gatherGradient(
        _ plan: Plan, segment: Segment, gradOutput: UnsafePointer<Float>, volume: Int, channels: Int,
        rectifier: (UnsafePointer<Float>, Float)?, staging: UnsafeMutablePointer<Float>, into: UnsafeMutablePointer<Float>,
        biasSums: UnsafeMutablePointer<Float>
    ) {
        let (depth, height, width) = (plan.depth, plan.height, plan.width)
        let x0 = 2 * segment.tx
        let columns = Swift.min(2 * segment.count, width - x0)
        @inline(__always) func read(_ base: UnsafePointer<Float>) -> SIMD32<Float> {
            if columns == 32 { return UnsafeRawPointer(base).loadUnaligned(as: SIMD32<Float>.self) }
            var partial = SIMD32<Float>()
            for j in 0..<columns { partial[j] = base[j] }
            return partial
        }
        for pz in 0..<2 {
            for py in 0..<2 {
                let z = 2 * segment.tz + pz, y = 2 * segment.ty + py
                let out = into + (pz * 2 + py) * 512
                guard z < depth && y < height else {
                    for v in 0..<32 { storeVector(ConvVector(), out + 16 * v) }
                    continue
                }
                let offset = (z * height + y) * width + x0
                // The same row of the next tile row (y + 2), for when it comes (see `transformInput`).
                if y + 2 < height {
                    for k in 0..<channels {
                        prefetchFloats(gradOutput + k * volume + offset + 2 * width, count: columns)
                        if let (yBase, _) = rectifier { prefetchFloats(yBase + k * volume + offset + 2 * width, count: columns) }
                    }
                }
                for k in 0..<channels {
                    var row = read(gradOutput + k * volume + offset)
                    if let (yBase, slope) = rectifier {
                        let sign = read(yBase + k * volume + offset)
                        row = SIMD32(lowHalf: Rectification.scaled(row.lowHalf, sign: sign.lowHalf, slope: slope),
                                     highHalf: Rectification.scaled(row.highHalf, sign: sign.highHalf, slope: slope))
                    }
                    biasSums[k] += (row.lowHalf + row.highHalf).sum()
                    UnsafeMutableRawPointer(staging + 32 * k).storeBytes(of: row, as: SIMD32<Float>.self)
                }
                // Rows k ≥ channels of staging hold an earlier group's values: they land in the padded
                // channels d ≥ Cd of W, whose sums are never read.
                transpose16x16(UnsafePointer(staging), srcStride: 32, out, dstStride: 16)
                transpose16x16(UnsafePointer(staging + 16), srcStride: 32, out + 256, dstStride: 16)
            }
        }
    }

    /// `(A⊗A⊗A) dy` of each of `tiles` tiles from their channel-last 2×2×2 gradient values
    /// (`gatherGradient`'s layout), on vectors of 16 channels: 64 points stored at
    /// `into + ξ·pointStride + tile·tileStride`, ξ = (z·4 + y)·4 + x, with A along an axis
    /// `(p, q) → (p, p + q, p − q, −q)`.
    @inline(__always)
    static func transformGradientTiles(
        _ values: UnsafePointer<Float>, tiles: Int, into: UnsafeMutablePointer<Float>, tileStride: Int, pointStride: Int
    ) {
        @inline(__always) func a(_ p: ConvVector, _ q: ConvVector) -> (ConvVector, ConvVector, ConvVector, ConvVector) {
            (p, p + q, p - q, -q)
        }
        for t in 0..<tiles {
            let out = into + t * tileStride
            // x points of the four rows (pz, py).
            @inline(__always) func xPoints(_ r: Int) -> (ConvVector, ConvVector, ConvVector, ConvVector) {
                a(loadVector(values + r * 512 + 32 * t), loadVector(values + r * 512 + 32 * t + 16))
            }
            let r00 = xPoints(0), r01 = xPoints(1), r10 = xPoints(2), r11 = xPoints(3)
            @inline(__always) func emit(_ xp: Int, _ n0: ConvVector, _ n1: ConvVector, _ f0: ConvVector, _ f1: ConvVector) {
                let near = a(n0, n1), far = a(f0, f1)
                @inline(__always) func store(_ yp: Int, _ z: (ConvVector, ConvVector, ConvVector, ConvVector)) {
                    storeVector(z.0, out + (yp * 4 + xp) * pointStride)
                    storeVector(z.1, out + ((4 + yp) * 4 + xp) * pointStride)
                    storeVector(z.2, out + ((8 + yp) * 4 + xp) * pointStride)
                    storeVector(z.3, out + ((12 + yp) * 4 + xp) * pointStride)
                }
                store(0, a(near.0, far.0))
                store(1, a(near.1, far.1))
                store(2, a(near.2, far.2))
                store(3, a(near.3, far.3))
            }
            emit(0, r00.0, r01.0, r10.0, r11.0)
            emit(1, r00.1, r01.1, r10.1, r11.1)
            emit(2, r00.2, r01.2, r10.2, r11.2)
            emit(3, r00.3, r01.3, r10.3, r11.3)
        }
    }

    /// `gradWeight[d][s][t] = (Gᵀ⊗Gᵀ⊗Gᵀ) sums[ξ][s][d]` for every channel pair, taps t = (z·3 + y)·3 + x.
    static func transformWeightGradient(_ plan: Plan, sums: UnsafePointer<Float>, padded: Int,
                                        into gradWeight: UnsafeMutablePointer<Float>) {
        let (cs, cd) = (plan.sourceChannels, plan.destinationChannels)
        // 4 points → 3 taps.
        @inline(__always) func gt(_ u0: Float, _ u1: Float, _ u2: Float, _ u3: Float) -> (Float, Float, Float) {
            (u0 + 0.5 * (u1 + u2), 0.5 * (u1 - u2), 0.5 * (u1 + u2) + u3)
        }
        // Destination channels on all threads: each writes its own kernels.
        Parallel.forEach(cd) { d in
            var u = InlineArray<64, Float>(repeating: 0)
            var x = InlineArray<48, Float>(repeating: 0)   // [z4][y4][x3]
            var y = InlineArray<36, Float>(repeating: 0)   // [z4][y3][x3]
            for s in 0..<cs {
                for xi in 0..<64 { u[xi] = sums[(xi * cs + s) * padded + d] }
                for zy in 0..<16 {
                    (x[zy * 3], x[zy * 3 + 1], x[zy * 3 + 2]) = gt(u[zy * 4], u[zy * 4 + 1], u[zy * 4 + 2], u[zy * 4 + 3])
                }
                for z in 0..<4 {
                    for c in 0..<3 {
                        (y[z * 9 + c], y[z * 9 + 3 + c], y[z * 9 + 6 + c]) =
                            gt(x[(z * 4) * 3 + c], x[(z * 4 + 1) * 3 + c], x[(z * 4 + 2) * 3 + c], x[(z * 4 + 3) * 3 + c])
                    }
                }
                let out = gradWeight + (d * cs + s) * 27
                for c in 0..<9 {
                    (out[c], out[9 + c], out[18 + c]) = gt(y[c], y[9 + c], y[18 + c], y[27 + c])
                }
            }
        }
    }
}
