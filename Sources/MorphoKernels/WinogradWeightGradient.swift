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
/// and the output gradient's 2×2×2 tiles into `W[ξ][tile][d]` (channel-last, through 16×16
/// transposes), then adds `V[ξ]·W[ξ]` into its running sums `[ξ][s][d]` with the direct weight
/// gradient's `WeightGradientTile` (source channels as its taps, tiles as its positions). The
/// workers' sums are added and transformed back (Gᵀ · Gᵀ · Gᵀ) once per call.
///
/// Blocks go to workers round-robin (block b to worker b mod workers), so the gradient is the
/// same bit for bit in every run with the same thread count, as the direct kernel's.
/// Workspace per worker: `4·64·(Cs·(tileBlock + 16) + (tileBlock + 16)·Cd′ + 256 + Cs·Cd′)`
/// bytes (Cd′ = Cd rounded up to 16; 1.4 MB for 32 → 32 channels).
extension WinogradConvolution {
    /// Whether the weight gradient of a layer runs here: the layers `applies` takes, with a
    /// kernel of depth 3 (the planar F(2×2, 3×3) has no weight gradient here) and a source
    /// read without a rectifier.
    static func appliesToWeightGradient(_ g: ConvGeometry, source: ConvolutionSource) -> Bool {
        g.kernel.d == 3 && source.rectifier == nil && weightGradientEnabled
            && applies(g, sourceChannels: g.cin, destinationChannels: g.cout)
    }

    /// False when `MORPHOSEG_CONV_WEIGHT=direct` (to measure the direct weight gradient).
    static let weightGradientEnabled: Bool = ProcessInfo.processInfo.environment["MORPHOSEG_CONV_WEIGHT"] != "direct"

    /// Overwrites `gradWeight` `[Cd, Cs, 3, 3, 3]` with `Σ_{n, voxel} ∂L/∂y[d] · x[s](voxel + tap − 1)`
    /// and `gradBias` `[Cd]` (when given) with `Σ ∂L/∂y[d]`, for `gradOutput` `[N, Cd, D, H, W]` read
    /// times the rectifier's derivative when `rectifier` is given, and the source `[N, Cs, D, H, W]`.
    static func runWeightGradient(
        _ plan: Plan, source: ConvolutionSource, gradOutput: UnsafePointer<Float>, rectifier: Rectification?,
        gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?
    ) {
        precondition(plan.kernelDepth == 3 && source.rectifier == nil, "Winograd weight gradient: 3D layers, unrectified source")
        let (cs, cd, points) = (plan.sourceChannels, plan.destinationChannels, plan.points)
        let padded = (cd + 15) / 16 * 16
        let stride = plan.blockStride
        let blockCount = (plan.tileCount + tileBlock - 1) / tileBlock
        let workers = Swift.min(Parallel.threads, blockCount)
        let sumsPerWorker = points * cs * padded + padded
        let sums = allocateFloats(workers * sumsPerWorker)
        defer { freeFloats(sums) }
        sums.update(repeating: 0, count: workers * sumsPerWorker)
        let vectors = padded / 16
        let tapBlocks = (cs + ConvolutionMicrokernel.weightGradientTaps - 1) / ConvolutionMicrokernel.weightGradientTaps
        let volume = plan.depth * plan.height * plan.width

        Parallel.forEach(workers) { worker in
            let (vPoint, wPoint) = (cs * stride + 16, stride * padded + 16)
            let v = allocateFloats(points * vPoint)
            let w = allocateFloats(points * wPoint)
            // One 16-channel group of transformed gradient rows `[ξ][channel][16 tiles]`, before its transposes.
            let staging = allocateFloats(points * 256)
            let rows = allocateFloats(16 * 64 + 96)
            let offsets = UnsafeMutablePointer<Int>.allocate(capacity: cs)
            let channelBases = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: cs)
            defer {
                freeFloats(v); freeFloats(w); freeFloats(staging); freeFloats(rows)
                offsets.deallocate(); channelBases.deallocate()
            }
            v.update(repeating: 0, count: points * vPoint)
            w.update(repeating: 0, count: points * wPoint)
            staging.update(repeating: 0, count: points * 256)
            rows.update(repeating: 0, count: 16 * 64)
            for s in 0..<cs { offsets[s] = s * stride }
            let acc = sums + worker * sumsPerWorker
            let biasAcc = acc + points * cs * padded
            var loadedItem = -1

            for block in Swift.stride(from: worker, to: blockCount, by: workers) {
                let first = block * tileBlock
                let count = Swift.min(tileBlock, plan.tileCount - first)
                forEachSegment(plan, first: first, count: count) { segment in
                    if segment.n != loadedItem {
                        source.channelBases(batchItem: segment.n, into: channelBases)
                        loadedItem = segment.n
                    }
                    for s in 0..<cs {
                        transformInput(plan, segment: segment, channel: UnsafePointer(channelBases[s]), rectifier: nil,
                                       rows: rows, into: v + s * stride, pointStride: vPoint)
                    }
                    let item = segment.n * cd * volume
                    var g0 = 0
                    while g0 < cd {
                        let group = Swift.min(16, cd - g0)
                        for k in 0..<group {
                            let offset = item + (g0 + k) * volume
                            let total = transformGradient(
                                plan, segment: segment, channel: gradOutput + offset,
                                rectifier: rectifier.map { (UnsafePointer($0.output + offset), $0.slope) },
                                into: staging + 16 * k, pointStride: 256)
                            biasAcc[g0 + k] += total
                        }
                        // Channel-last: W[ξ][lane + tile][g0 + k] (rows k ≥ group stay 0).
                        for xi in 0..<points {
                            transpose16x16(UnsafePointer(staging + xi * 256), srcStride: 16,
                                           w + xi * wPoint + segment.lane * padded + g0, dstStride: padded)
                        }
                        g0 += 16
                    }
                }
                // acc[ξ][s][d] += Σ_tiles V[ξ][s][tile] · W[ξ][tile][d].
                for xi in 0..<points {
                    var vv = 0
                    while vv < vectors {
                        let vb = Swift.min(ConvolutionMicrokernel.weightGradientVectors, vectors - vv)
                        for b in 0..<tapBlocks {
                            let s0 = b * cs / tapBlocks
                            let r = (b + 1) * cs / tapBlocks - s0
                            ConvolutionMicrokernel.weightGradient(v: vb, r: r, WeightGradientTileArguments(
                                positions: count, gradOut: w + xi * wPoint + 16 * vv, gradOutStride: padded,
                                slab: v + xi * vPoint, offsets: offsets + s0,
                                accumulator: acc + (xi * cs + s0) * padded + 16 * vv, accumulatorStride: padded))
                        }
                        vv += vb
                    }
                }
            }
        }
        // Add the workers' sums into worker 0's, in worker order.
        for k in 1..<Swift.max(workers, 1) {
            let other = sums + k * sumsPerWorker
            for i in 0..<sumsPerWorker { sums[i] += other[i] }
        }
        transformWeightGradient(plan, sums: sums, padded: padded, into: gradWeight)
        if let gradBias {
            let biasSums = sums + points * cs * padded
            for d in 0..<cd { gradBias[d] = biasSums[d] }
        }
    }

    /// `(A⊗A⊗A) dy` of the segment's output tiles of one channel of the output gradient (times
    /// the rectifier's derivative, read at the same offsets, when given): 64 vectors of 16 tiles
    /// at `into + ξ·pointStride`, ξ = (z·4 + y)·4 + x. Voxels past the grid's edge count as 0 and
    /// lanes past `segment.count` come out 0. Returns the sum of the tiles' gradient values (the
    /// bias gradient's share).
    @inline(__always)
    static func transformGradient(
        _ plan: Plan, segment: Segment, channel: UnsafePointer<Float>, rectifier: (UnsafePointer<Float>, Float)?,
        into: UnsafeMutablePointer<Float>, pointStride: Int
    ) -> Float {
        let (depth, height, width) = (plan.depth, plan.height, plan.width)
        let x0 = 2 * segment.tx
        let columns = Swift.min(2 * segment.count, width - x0)
        // 32 voxels of a row from `offset` (zeros past `columns`).
        @inline(__always) func read(_ base: UnsafePointer<Float>, _ offset: Int) -> SIMD32<Float> {
            if columns == 32 { return UnsafeRawPointer(base + offset).loadUnaligned(as: SIMD32<Float>.self) }
            var partial = SIMD32<Float>()
            for j in 0..<columns { partial[j] = base[offset + j] }
            return partial
        }
        // Row (pz, py) of the 16 tiles: its even (px 0) and odd (px 1) voxels.
        @inline(__always) func row(_ pz: Int, _ py: Int) -> (ConvVector, ConvVector) {
            let z = 2 * segment.tz + pz, y = 2 * segment.ty + py
            guard z < depth && y < height else { return (ConvVector(), ConvVector()) }
            let offset = (z * height + y) * width + x0
            let pair = read(channel, offset)
            guard let (yBase, slope) = rectifier else { return (evenLanes(pair), oddLanes(pair)) }
            let sign = read(yBase, offset)
            return (Rectification.scaled(evenLanes(pair), sign: evenLanes(sign), slope: slope),
                    Rectification.scaled(oddLanes(pair), sign: oddLanes(sign), slope: slope))
        }
        // A on one axis: (p, q) → (p, p + q, p − q, −q).
        @inline(__always) func a(_ p: ConvVector, _ q: ConvVector) -> (ConvVector, ConvVector, ConvVector, ConvVector) {
            (p, p + q, p - q, -q)
        }
        var total = ConvVector()
        // x points of the four rows: xs[pz][py · 4 + x].
        var xs = InlineArray<2, InlineArray<8, ConvVector>>(repeating: InlineArray<8, ConvVector>(repeating: ConvVector()))
        for pz in 0..<2 {
            for py in 0..<2 {
                let (e, o) = row(pz, py)
                total += e + o
                (xs[pz][py * 4], xs[pz][py * 4 + 1], xs[pz][py * 4 + 2], xs[pz][py * 4 + 3]) = a(e, o)
            }
        }
        // Then A along y within each slice, and along z.
        @inline(__always) func store(_ yp: Int, _ xp: Int, _ z: (ConvVector, ConvVector, ConvVector, ConvVector)) {
            storeVector(z.0, into + (yp * 4 + xp) * pointStride)
            storeVector(z.1, into + ((4 + yp) * 4 + xp) * pointStride)
            storeVector(z.2, into + ((8 + yp) * 4 + xp) * pointStride)
            storeVector(z.3, into + ((12 + yp) * 4 + xp) * pointStride)
        }
        for xp in 0..<4 {
            let near = a(xs[0][xp], xs[0][4 + xp]), far = a(xs[1][xp], xs[1][4 + xp])
            store(0, xp, a(near.0, far.0))
            store(1, xp, a(near.1, far.1))
            store(2, xp, a(near.2, far.2))
            store(3, xp, a(near.3, far.3))
        }
        return total.sum()
    }

    /// `gradWeight[d][s][t] = (Gᵀ⊗Gᵀ⊗Gᵀ) sums[ξ][s][d]` for every channel pair, taps t = (z·3 + y)·3 + x.
    static func transformWeightGradient(_ plan: Plan, sums: UnsafePointer<Float>, padded: Int,
                                        into gradWeight: UnsafeMutablePointer<Float>) {
        let (cs, cd) = (plan.sourceChannels, plan.destinationChannels)
        // 4 points → 3 taps.
        @inline(__always) func gt(_ u0: Float, _ u1: Float, _ u2: Float, _ u3: Float) -> (Float, Float, Float) {
            (u0 + 0.5 * (u1 + u2), 0.5 * (u1 - u2), 0.5 * (u1 + u2) + u3)
        }
        var u = InlineArray<64, Float>(repeating: 0)
        var x = InlineArray<48, Float>(repeating: 0)   // [z4][y4][x3]
        var y = InlineArray<36, Float>(repeating: 0)   // [z4][y3][x3]
        for d in 0..<cd {
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
