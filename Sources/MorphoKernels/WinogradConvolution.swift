import Foundation

/// Winograd minimal-filtering convolution F(2×2×2, 3×3×3) — and F(2×2, 3×3) per slice for
/// kernel depth 1 — for the layers U-Nets are made of: kernel 3, stride 1, padding 1
/// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016).
///
/// Output tiles of 2×2×2 voxels are computed from 4×4×4 input patches as
/// `Y = Aᵀ [ Σ_s (G g_{d,s} Gᵀ) ⊙ (Bᵀ x_s B) ] A` (each product taken along all three axes), with
///
///     Bᵀ = | 1  0 −1  0 |     G = | 1    0    0  |     Aᵀ = | 1  1  1  0 |
///          | 0  1  1  0 |         | ½    ½    ½  |          | 0  1 −1 −1 |
///          | 0 −1  1  0 |         | ½   −½    ½  |
///          | 0  1  0 −1 |         | 0    0    1  |
///
/// so the sum over source channels becomes 64 independent matrix products (one per transform
/// point ξ) of `[tiles × Cs]·[Cs × Cd]`: 64 multiplies per tile per channel pair instead of
/// 8·27 = 216, 3.4× fewer (2D: 16 instead of 36, 2.25×). The products run on the same
/// `SpatialTile` microkernel as the direct convolution (up to 8 destination channels × 2 vectors
/// of 16 tiles; the "taps" are the source channels). Rounding: the transforms only add, subtract
/// and halve, so results agree with the direct convolution to a few float32 ulps of the
/// operands' magnitudes (tests pin 1e-5 relative to the output's scale).
///
/// Work is cut into blocks of `tileBlock` consecutive tiles (batch item, tile slice, tile row,
/// tile column order); a worker transforms a block's input patches into `V[ξ][s][tile]`, runs
/// the 64 products into `M[ξ][d][tile]`, and transforms those into the destination. Input
/// rows are split into even and odd voxels as they are read, so the transform along W is
/// contiguous vector arithmetic; consecutive points' rows of V and M sit one cache line off a
/// power of two apart, so a tile's 64 points do not share one L1 set. Workspace: per worker
/// about `4·ξ·(Cs + Cd)·(tileBlock + 16)` bytes (1.5 MB for 64 → 64 channels), per call the transformed filters `4·ξ·Cs·Cd` bytes;
/// nothing grows with the volume.
///
/// `Convolution.forward` and `Convolution.backwardData` (the data gradient of such a layer is
/// the same layer with the kernel flipped and the channels swapped) come here when `applies`,
/// and `Convolution.backwardWeight` of 3D layers too (WinogradWeightGradient.swift);
/// `MORPHOSEG_CONV=direct` in the environment turns it off (to measure the direct kernels).
enum WinogradConvolution {
    /// False when `MORPHOSEG_CONV=direct` (read once at start; the Winograd tests set it back to
    /// true so that they test Winograd whatever the environment says).
    nonisolated(unsafe) static var enabled: Bool = ProcessInfo.processInfo.environment["MORPHOSEG_CONV"] != "direct"

    /// Tiles per work block: 2 vectors of 16. A block's transformed inputs and products for
    /// 32 → 32 channels take 64 points × 64 channels × (tileBlock + 16) floats: 768 KB at 32
    /// tiles, 1 MB at 48 (a Zen 3 core has 512 KB of L2). 32 measured within the noise of 48.
    static let tileBlock = 32

    /// Fewest channels on either side for a 3D layer to run here. The transforms cost in
    /// proportion to Cs + Cd and the products to Cs·Cd, so thin layers lose. Measured on AVX2
    /// (Zen 3, 2 threads, forward, min of a noisy host) against the chunked direct kernels:
    /// 16 → 16 @ 64³ 16.2 ms against 21.8 ms, 16 → 32 @ 64³ 33.4 against 43.9, 32 → 32 @ 32³
    /// 5.4 against 11.1, 64 → 64 @ 16³ 3.9 against 5.2.
    nonisolated(unsafe) static var minimumChannels = 16
    /// The same for 2D layers (F(2×2, 3×3), 2.25× fewer multiplies): 32, since 16 → 16 and
    /// 32 → 32 at 8 × 256² / 128² measured 21.8 / 14.3 ms against 17.0 / 15.8 ms direct on AVX2
    /// (Zen 3), and on AVX-512 (Sapphire Rapids, 2 threads, CPU time of a loaded host) 16 → 16 @
    /// 256² 2.8 against 2.2 ms, 32 → 32 @ 128² 1.78 against 2.05 ms (b1) and 15.9 against 16.9
    /// (b8): the 16-deep products are too short to pay for the transforms, 32-deep ones are not.
    nonisolated(unsafe) static var minimumPlanarChannels = 32
    /// Fewest tiles: with few blocks the last ones leave a core idle. 64 → 64 @ 16³ is 512
    /// tiles, 16 blocks, and gains (above). A fixed count, not one per worker, so the choice
    /// (and the rounding) does not change with the thread count.
    nonisolated(unsafe) static var minimumTiles = 256

    /// Whether a stride-1, padding-1, 3×3×3 (or 1×3×3) convolution from `sourceChannels` to
    /// `destinationChannels` runs here: wide enough layers (`minimumChannels`) with enough
    /// tiles to share between the workers.
    static func applies(_ g: ConvGeometry, sourceChannels: Int, destinationChannels: Int) -> Bool {
        guard enabled else { return false }
        guard g.stride == (1, 1, 1), g.kernel.h == 3, g.kernel.w == 3, g.padding.h == 1, g.padding.w == 1 else { return false }
        let deep = g.kernel.d == 3 && g.padding.d == 1
        guard deep || (g.kernel.d == 1 && g.padding.d == 0) else { return false }
        guard Swift.min(sourceChannels, destinationChannels) >= (deep ? minimumChannels : minimumPlanarChannels) else { return false }
        let tiles = g.n * (deep ? (g.inD + 1) / 2 : g.inD) * ((g.inH + 1) / 2) * ((g.inW + 1) / 2)
        return tiles >= minimumTiles
    }

    /// The shape of one Winograd pass: `destinationChannels` outputs per voxel from
    /// `sourceChannels` inputs on a `depth × height × width` grid (output grid = input grid).
    struct Plan {
        let batch: Int
        let sourceChannels: Int
        let destinationChannels: Int
        let depth: Int, height: Int, width: Int
        /// 3 for F(2×2×2, 3×3×3), 1 for F(2×2, 3×3) slice by slice.
        let kernelDepth: Int
        /// Transform points: 64 or 16.
        var points: Int { kernelDepth == 3 ? 64 : 16 }
        var tilesD: Int { kernelDepth == 3 ? (depth + 1) / 2 : depth }
        var tilesH: Int { (height + 1) / 2 }
        var tilesW: Int { (width + 1) / 2 }
        var tileCount: Int { batch * tilesD * tilesH * tilesW }
        /// Floats between tile rows of V and M: the block plus one vector of slack, since the
        /// transforms write whole vectors.
        var blockStride: Int { WinogradConvolution.tileBlock + 16 }

        init(_ g: ConvGeometry, sourceChannels: Int, destinationChannels: Int) {
            batch = g.n
            self.sourceChannels = sourceChannels
            self.destinationChannels = destinationChannels
            (depth, height, width) = (g.inD, g.inH, g.inW)
            kernelDepth = g.kernel.d
        }

        /// Bytes allocated by one call with `workers` workers.
        func workspaceBytes(workers: Int) -> Int {
            let perWorker = points * ((sourceChannels + destinationChannels) * blockStride + 32) + 16 * 64 + 96 + sourceChannels
            // The weight gradient's sums: one group per worker and up to `mostExtraGroups` more.
            let padded = (destinationChannels + 15) / 16 * 16
            let sums = points * sourceChannels * padded + padded
            let groups = workers + PartialSums.mostExtraGroups(workers: workers, floatsPerGroup: sums)
            return 4 * (workers * perWorker + groups * sums)
        }
    }

    /// Runs one pass, overwriting `destination` `[N, Cd, D, H, W]`: `destination[d] = bias[d] +
    /// Σ_s conv3(source[s], kernel(d, s))` with zero padding 1, the kernels read through `filter`;
    /// with `rectifierSlope` s the stored values are rectified, `y > 0 ? y : s·y`.
    ///
    /// With `upsampled` (which must `fit` the plan), source channels `0 ..< upsampled.channels`
    /// are that part read up-sampled ×2 and `source` holds the rest (no rectifier). With
    /// `summedOnto` (a grid the plan's is exactly ×2 of), `destination` is `[N, Cd, summedOnto]`
    /// and takes each tile's outputs summed (the up-sampling's adjoint; no bias, no rectifier).
    /// See WinogradUpsampling.swift.
    static func run(
        _ plan: Plan, filter: FilterLayout, bias: UnsafePointer<Float>?,
        source: ConvolutionSource, upsampled: UpsampledPart? = nil, destination: UnsafeMutablePointer<Float>,
        summedOnto coarse: SpatialExtent? = nil, rectifierSlope: Float? = nil
    ) {
        let (cs, cd, points) = (plan.sourceChannels, plan.destinationChannels, plan.points)
        let cu = upsampled?.channels ?? 0
        precondition(upsampled.map { $0.fits(plan) && source.rectifier == nil } ?? true,
                     "an up-sampled Winograd part is exactly ×2 onto the grid, beside an unrectified source")
        precondition(coarse.map { UpsampledPart.fits($0, plan) && bias == nil && rectifierSlope == nil } ?? true,
                     "a Winograd gradient summed onto a coarse grid is exactly ×2 of it, with no bias or rectifier")
        precondition(cu + source.channels == cs, "Winograd source channels \(cu) + \(source.channels) for a pass of \(cs)")
        let deep = plan.kernelDepth == 3
        let blocks = Convolution.channelBlocks(cd, taps: cs)
        let filters = allocateFloats(points * cs * cd + cd)
        defer { freeFloats(filters) }
        transformFilters(plan, filter: filter, blocks: blocks, into: filters)
        let biasValues = filters + points * cs * cd
        for d in 0..<cd { biasValues[d] = bias?[d] ?? 0 }

        let blockCount = (plan.tileCount + tileBlock - 1) / tileBlock
        let workers = Swift.min(Parallel.threads, blockCount)
        let grain = claimGrain(blocks: blockCount, workers: workers)
        let queue = TileQueue(count: (blockCount + grain - 1) / grain)
        let stride = plan.blockStride
        Parallel.forEach(workers) { _ in
            // One cache line between consecutive points' rows: the transforms touch all 64 points
            // of a tile, and at a power-of-two distance (8 KiB for 32 channels) they would all
            // fall in one L1 set.
            let (vPoint, mPoint) = (cs * stride + 16, cd * stride + 16)
            let v = allocateFloats(points * vPoint)
            let m = allocateFloats(points * mPoint)
            let rows = allocateFloats(16 * 64 + 96)
            let zeros = allocateFloats(cd)
            let offsets = UnsafeMutablePointer<Int>.allocate(capacity: cs)
            let channelBases = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 2 * cs)
            defer {
                freeFloats(v); freeFloats(m); freeFloats(rows); freeFloats(zeros)
                offsets.deallocate(); channelBases.deallocate()
            }
            // Lanes past a block's last tile are computed and discarded; start them at 0.
            v.update(repeating: 0, count: points * vPoint)
            rows.update(repeating: 0, count: 16 * 64)
            zeros.update(repeating: 0, count: cd)
            for s in 0..<cs { offsets[s] = s * stride }
            let rectifierBases = channelBases + cs
            var loadedItem = -1

            while let claimed = queue.claim() {
                for block in (claimed * grain)..<Swift.min(blockCount, (claimed + 1) * grain) {
                    let first = block * tileBlock
                    let count = Swift.min(tileBlock, plan.tileCount - first)
                    // Input transform, segment by segment (≤ 16 tiles of one tile row).
                    forEachSegment(plan, first: first, count: count) { segment in
                        if segment.n != loadedItem {
                            source.channelBases(batchItem: segment.n, into: channelBases + cu)
                            source.rectifierBases(batchItem: segment.n, into: rectifierBases + cu)
                            loadedItem = segment.n
                        }
                        upsampled?.transformInput(plan, segment: segment, rows: rows, into: v, channelStride: stride, pointStride: vPoint)
                        if isInteriorPlanar(plan, segment) {
                            transformInteriorPlanar(plan, segment: segment, channels: channelBases + cu, rectifierBases: rectifierBases + cu,
                                                    slope: source.rectifier?.slope, count: cs - cu, into: v + cu * stride,
                                                    channelStride: stride, pointStride: vPoint)
                            return
                        }
                        for s in cu..<cs {
                            transformInput(plan, segment: segment, channel: UnsafePointer(channelBases[s]),
                                           rectifier: source.rectifier.map { (UnsafePointer(rectifierBases[s]), $0.slope) },
                                           rows: rows, into: v + s * stride, pointStride: vPoint)
                        }
                    }
                    // The ξ products: M[ξ] = U[ξ] · V[ξ] over source channels.
                    let vectors = (count + 15) / 16
                    for xi in 0..<points {
                        // Points a coarse sum does not read are not computed; points where the
                        // up-sampled part is zero skip its channels.
                        if coarse != nil && UpsampledPart.isZeroPoint(xi, deep: deep) { continue }
                        let skipped = upsampled != nil && UpsampledPart.isZeroPoint(xi, deep: deep) ? cu : 0
                        var args = SpatialTileArguments(
                            taps: cs - skipped, offsets: UnsafePointer(offsets + skipped), weights: UnsafePointer(filters),
                            bias: UnsafePointer(zeros), source: UnsafePointer(v + xi * vPoint), sourceRowStride: 0, output: m,
                            outputRowStride: 0, outputStride: stride, vectorsPerRow: Int.max, row: 0, vector: 0)
                        for b in blocks {
                            args.weights = UnsafePointer(filters + xi * cs * cd + b.weightOffset + skipped * b.count)
                            args.output = m + xi * mPoint + b.first * stride
                            var i = 0
                            while i < vectors {
                                let r = Swift.min(b.positions, vectors - i)
                                args.vector = i
                                ConvolutionMicrokernel.spatial(m: b.count, r: r, args)
                                i += r
                            }
                        }
                    }
                    // Output transform.
                    if let coarse {
                        forEachSegment(plan, first: first, count: count) { segment in
                            let item = destination + segment.n * cd * coarse.count
                            for d in 0..<cd {
                                transformOutputSummed(plan, segment: segment, extent: coarse, products: UnsafePointer(m + d * stride),
                                                      pointStride: mPoint, into: item + d * coarse.count)
                            }
                        }
                        continue
                    }
                    forEachSegment(plan, first: first, count: count) { segment in
                        let item = destination + segment.n * cd * plan.depth * plan.height * plan.width
                        if isInteriorPlanar(plan, segment) {
                            transformOutputInteriorPlanar(plan, segment: segment, products: UnsafePointer(m), channelStride: stride,
                                                          pointStride: mPoint, count: cd, bias: UnsafePointer(biasValues),
                                                          slope: rectifierSlope, into: item,
                                                          channelVolume: plan.depth * plan.height * plan.width)
                            return
                        }
                        for d in 0..<cd {
                            transformOutput(plan, segment: segment, products: UnsafePointer(m + d * stride), pointStride: mPoint,
                                            bias: biasValues[d], slope: rectifierSlope, into: item + d * plan.depth * plan.height * plan.width)
                        }
                    }
                }
            }
        }
    }

    /// Consecutive blocks a worker takes at a time: about 8 runs per worker. Consecutive blocks
    /// share source rows (tile row ty + 1 reads two of tile row ty's four rows, the next tile
    /// slice two of four slices), which then stay in that worker's cache, and the rows
    /// `transformInput` prefetches for tile row ty + 1 are read by the same worker.
    static func claimGrain(blocks: Int, workers: Int) -> Int {
        Swift.max(1, blocks / (8 * Swift.max(1, workers)))
    }

    /// Up to 16 consecutive tiles of one tile row, at lane `lane` of the block's V and M rows.
    struct Segment {
        var n: Int, tz: Int, ty: Int, tx: Int
        var count: Int
        var lane: Int
    }

    /// Calls `body` for the segments covering tiles `first ..< first + count`, in order.
    @inline(__always)
    static func forEachSegment(_ plan: Plan, first: Int, count: Int, _ body: (Segment) -> Void) {
        let (tw, th, td) = (plan.tilesW, plan.tilesH, plan.tilesD)
        var t = first
        var tx = t % tw, rest = t / tw
        var ty = rest % th
        rest /= th
        var tz = rest % td, n = rest / td
        var lane = 0
        while lane < count {
            let run = Swift.min(16, tw - tx, count - lane)
            body(Segment(n: n, tz: tz, ty: ty, tx: tx, count: run, lane: lane))
            lane += run
            t += run
            tx += run
            if tx == tw {
                tx = 0
                ty += 1
                if ty == th {
                    ty = 0
                    tz += 1
                    if tz == td { tz = 0; n += 1 }
                }
            }
        }
    }

    // MARK: - Transforms

    /// Where the 3×3(×3) kernels of a pass are: tap t of the kernel from source channel s to
    /// destination channel d is `base[d·destinationStride + s·sourceStride + t·tapStride]`, taps
    /// numbered `(kz·3 + ky)·3 + kx` (or `ky·3 + kx`). The forward pass reads a `[Cout, Cin, k…]`
    /// weight as it is; the data gradient reads the same weight flipped (tap stride −1) with the
    /// channels swapped.
    struct FilterLayout {
        var base: UnsafePointer<Float>
        var destinationStride: Int
        var sourceStride: Int
        var tapStride: Int

        /// A `[Cout, Cin, taps]` weight as the kernels of its forward pass.
        static func forward(_ weight: UnsafePointer<Float>, sourceChannels: Int, taps: Int) -> FilterLayout {
            FilterLayout(base: weight, destinationStride: sourceChannels * taps, sourceStride: taps, tapStride: 1)
        }

        /// A `[Cout, Cin, taps]` weight as the kernels of its data gradient for input channels
        /// `inputChannels`: destination d is input channel `inputChannels.lowerBound + d`, source s is
        /// output channel s, the kernel flipped on every axis.
        static func dataGradient(_ weight: UnsafePointer<Float>, inputChannels: Range<Int>, totalInputChannels: Int,
                                 taps: Int) -> FilterLayout {
            FilterLayout(base: weight + inputChannels.lowerBound * taps + taps - 1, destinationStride: taps,
                         sourceStride: totalInputChannels * taps, tapStride: -1)
        }
    }

    /// `U[ξ] = G g Gᵀ` (along every kernel axis) for every channel pair, packed per ξ as the
    /// microkernel reads weights: per channel block, `[source channel][block channel]`, so the
    /// packed index q of a pair runs over `0 ..< Cs·Cd` the same way at every ξ. Eight pairs
    /// (consecutive q) are transformed at once, one per lane, and stored as 8 floats per ξ.
    static func transformFilters(_ plan: Plan, filter: FilterLayout, blocks: [Convolution.ChannelBlock],
                                 into filters: UnsafeMutablePointer<Float>) {
        typealias Lanes = SIMD8<Float>
        let (cs, cd) = (plan.sourceChannels, plan.destinationChannels)
        let deep = plan.kernelDepth == 3
        let perPoint = cs * cd
        let points = plan.points
        // 3 taps → 4 points: (a, ½(a+b+c), ½(a−b+c), c).
        @inline(__always) func g(_ a: Lanes, _ b: Lanes, _ c: Lanes) -> (Lanes, Lanes, Lanes, Lanes) {
            (a, 0.5 * (a + b + c), 0.5 * (a - b + c), c)
        }
        let depthTaps = deep ? 3 : 1
        let chunks = (perPoint + 7) / 8
        Parallel.forRanges(chunks, grain: 16) { range in
            var k = InlineArray<27, Lanes>(repeating: Lanes())
            var x1 = InlineArray<36, Lanes>(repeating: Lanes())
            var y1 = InlineArray<48, Lanes>(repeating: Lanes())
            var u = InlineArray<64, Lanes>(repeating: Lanes())
            var offsets = InlineArray<8, Int>(repeating: 0)
            var blockIndex = 0
            for chunk in range {
                let q0 = chunk * 8
                let lanes = Swift.min(8, perPoint - q0)
                // The weight offset of each lane's (d, s) pair (q only grows within a range).
                for lane in 0..<8 {
                    let q = q0 + Swift.min(lane, lanes - 1)
                    while q >= blocks[blockIndex].weightOffset + cs * blocks[blockIndex].count { blockIndex += 1 }
                    let b = blocks[blockIndex]
                    let r = q - b.weightOffset
                    offsets[lane] = (b.first + r % b.count) * filter.destinationStride + (r / b.count) * filter.sourceStride
                }
                for t in 0..<(depthTaps * 9) {
                    let tap = filter.base + t * filter.tapStride
                    var v = Lanes()
                    for lane in 0..<8 { v[lane] = tap[offsets[lane]] }
                    k[t] = v
                }
                // Along x: [z][y][3] → x1[z][y][4].
                for zy in 0..<(depthTaps * 3) {
                    (x1[zy * 4], x1[zy * 4 + 1], x1[zy * 4 + 2], x1[zy * 4 + 3]) = g(k[zy * 3], k[zy * 3 + 1], k[zy * 3 + 2])
                }
                // Along y: [z][3][4] → y1[z][4][4].
                for z in 0..<depthTaps {
                    for x in 0..<4 {
                        (y1[z * 16 + x], y1[z * 16 + 4 + x], y1[z * 16 + 8 + x], y1[z * 16 + 12 + x]) =
                            g(x1[(z * 3) * 4 + x], x1[(z * 3 + 1) * 4 + x], x1[(z * 3 + 2) * 4 + x])
                    }
                }
                if deep {
                    // Along z: [3][16] → u[4][16].
                    for yx in 0..<16 {
                        (u[yx], u[16 + yx], u[32 + yx], u[48 + yx]) = g(y1[yx], y1[16 + yx], y1[32 + yx])
                    }
                } else {
                    for yx in 0..<16 { u[yx] = y1[yx] }
                }
                let out = filters + q0
                if lanes == 8 {
                    for xi in 0..<points { UnsafeMutableRawPointer(out + xi * perPoint).storeBytes(of: u[xi], as: Lanes.self) }
                } else {
                    for xi in 0..<points { for lane in 0..<lanes { out[xi * perPoint + lane] = u[xi][lane] } }
                }
            }
        }
    }

    /// `V[ξ][tile] = (Bᵀ x B)[ξ]` for the segment's tiles of one source channel, written at
    /// `into + ξ·pointStride + lane` (16 lanes; those past `count` are garbage the output
    /// transform never reads). `rows`: scratch of 16 rows × 64 floats (even voxels at 0, odd at 32)
    /// followed by 96 floats of staging for rows that end inside the segment.
    @inline(__always)
    static func transformInput(
        _ plan: Plan, segment: Segment, channel: UnsafePointer<Float>, rectifier: (UnsafePointer<Float>, Float)?,
        rows: UnsafeMutablePointer<Float>, into: UnsafeMutablePointer<Float>, pointStride: Int
    ) {
        let deep = plan.kernelDepth == 3
        let (depth, height, width) = (plan.depth, plan.height, plan.width)
        let zRows = deep ? 4 : 1
        let staging = rows + 16 * 64
        // Patch column j of tile t is x = 2t − 1 + j; the segment's row is read from x = base on.
        let base = 2 * segment.tx
        let inside = base + 32 <= width
        // Gather the patch rows, split into even (p[2j] = x[base − 1 + 2j]) and odd
        // (p[2j + 1] = x[base + 2j]) columns: from 32 voxels v = x[base ..< base + 32], the odd
        // ones are v's even lanes and the even ones are x[base − 1] followed by v's odd lanes.
        for k in 0..<zRows {
            let z = deep ? 2 * segment.tz - 1 + k : segment.tz
            for l in 0..<4 {
                let y = 2 * segment.ty - 1 + l
                let even = rows + (k * 4 + l) * 64
                let odd = even + 32
                guard z >= 0 && z < depth && y >= 0 && y < height else {
                    storeVector(ConvVector(), even)
                    storeVector(ConvVector(), odd)
                    even[16] = 0
                    odd[16] = 0
                    continue
                }
                let rowOffset = (z * height + y) * width
                let row = channel + rowOffset
                let (v, before, after) = gatherRow(row, base: base, width: width, inside: inside, staging: staging)
                var (evenPatch, oddPatch, first, last) = (oddLanes(v), evenLanes(v), before, after)
                if let (yBase, slope) = rectifier {
                    // On 16-lane halves: a masked replace on SIMD32 compiles to a lane loop.
                    let (yv, yBefore, yAfter) = gatherRow(yBase + rowOffset, base: base, width: width, inside: inside, staging: staging)
                    evenPatch = Rectification.scaled(evenPatch, sign: oddLanes(yv), slope: slope)
                    oddPatch = Rectification.scaled(oddPatch, sign: evenLanes(yv), slope: slope)
                    first = Rectification.scaled(first, sign: yBefore, slope: slope)
                    last = Rectification.scaled(last, sign: yAfter, slope: slope)
                }
                // Whole vectors at `even` and `odd`, as the z/y pass below loads them: a load over a
                // scalar store and a vector store next to it cannot be store-forwarded (it waits for
                // both to retire), which put ~10 % of this function on those loads.
                storeVector(shiftedUp(evenPatch, inserting: first), even)
                even[16] = evenPatch[15]
                storeVector(oddPatch, odd)
                odd[16] = last
            }
        }
        // The rows the next tile row (ty + 1) adds, 2·ty + 3 and 2·ty + 4: in cache by the time it
        // comes, which with a worker's consecutive blocks is usually its next block.
        for k in 0..<zRows {
            let z = deep ? 2 * segment.tz - 1 + k : segment.tz
            guard z >= 0 && z < depth else { continue }
            for y in (2 * segment.ty + 3)..<Swift.max(2 * segment.ty + 3, Swift.min(2 * segment.ty + 5, height)) {
                let rowOffset = (z * height + y) * width + base - 1
                prefetchFloats(channel + rowOffset, count: 34)
                if let (yBase, _) = rectifier { prefetchFloats(yBase + rowOffset, count: 34) }
            }
        }
        // Bᵀ along z (deep) and y. The x pass below reads even and odd lanes 0...16 only: the
        // vectors at 0 and 32 and the single lanes 16 and 48 (not all four vectors of a row).
        if deep {
            for half in 0..<2 {
                let lane = 16 + 32 * half
                var r = InlineArray<16, Float> { i in rows[i * 64 + lane] }
                transformZY(&r)
                for i in 0..<16 { rows[i * 64 + lane] = r[i] }
            }
            for half in 0..<2 {
                let c = 2 * half
                var r = InlineArray<16, ConvVector> { i in loadVector(rows + i * 64 + 16 * c) }
                transformZY(&r)
                for i in 0..<16 { storeVector(r[i], rows + i * 64 + 16 * c) }
            }
        } else {
            // Without depth, the four rows only (the 12 rows of a 3D patch are not read).
            for half in 0..<2 {
                let lane = 16 + 32 * half
                (rows[lane], rows[64 + lane], rows[128 + lane], rows[192 + lane]) =
                    inputButterfly(rows[lane], rows[64 + lane], rows[128 + lane], rows[192 + lane])
            }
            for half in 0..<2 {
                let c = 2 * half
                let p = rows + 16 * c
                let (a, b, e, f) = inputButterfly(loadVector(p), loadVector(p + 64), loadVector(p + 128), loadVector(p + 192))
                storeVector(a, p)
                storeVector(b, p + 64)
                storeVector(e, p + 128)
                storeVector(f, p + 192)
            }
        }
        // Bᵀ along x: tile t reads p[2t ..< 2t + 4] = (even[t], odd[t], even[t+1], odd[t+1]).
        let out = into + segment.lane
        for row in 0..<(zRows * 4) {
            let even = UnsafePointer(rows + row * 64), odd = even + 32
            let (v0, v1, v2, v3) = inputButterfly(loadVector(even), loadVector(odd), loadVector(even + 1), loadVector(odd + 1))
            let xi = 4 * row
            storeVector(v0, out + xi * pointStride)
            storeVector(v1, out + (xi + 1) * pointStride)
            storeVector(v2, out + (xi + 2) * pointStride)
            storeVector(v3, out + (xi + 3) * pointStride)
        }
    }

    /// A patch row's voxels `x[base ..< base + 32]` and the single voxels `x[base − 1]` and
    /// `x[base + 32]` of one grid row, zero outside `0 ..< width` (the padding). Rows that end
    /// inside those 32 voxels are copied through `staging` (32 floats).
    @inline(__always)
    static func gatherRow(_ row: UnsafePointer<Float>, base: Int, width: Int, inside: Bool,
                          staging: UnsafeMutablePointer<Float>) -> (SIMD32<Float>, Float, Float) {
        let before: Float = base > 0 ? row[base - 1] : 0
        if inside {
            let after: Float = base + 32 < width ? row[base + 32] : 0
            return (UnsafeRawPointer(row + base).loadUnaligned(as: SIMD32<Float>.self), before, after)
        }
        // The row ends after n of the 32 voxels: a half-width vector when n is 16 (grids 16 or
        // 48 wide), else the n voxels copied over zeros.
        let n = width - base
        if n == 16 {
            let low = UnsafeRawPointer(row + base).loadUnaligned(as: SIMD16<Float>.self)
            return (SIMD32(lowHalf: low, highHalf: SIMD16()), before, 0)
        }
        UnsafeMutableRawPointer(staging).storeBytes(of: SIMD32<Float>(), as: SIMD32<Float>.self)
        for j in 0..<n { staging[j] = row[base + j] }
        return (UnsafeRawPointer(staging).loadUnaligned(as: SIMD32<Float>.self), before, 0)
    }

    /// Bᵀ applied to four consecutive points of one axis: `(p0 − p2, p1 + p2, p2 − p1, p1 − p3)`.
    @inline(__always)
    static func inputButterfly<T: TransformValue>(_ p0: T, _ p1: T, _ p2: T, _ p3: T) -> (T, T, T, T) {
        (p0 - p2, p1 + p2, p2 - p1, p1 - p3)
    }

    /// Bᵀ along z, then y, on one column of a 3D patch's rows: `r[k·4 + l]` is row l (y) of
    /// slice k (z).
    @inline(__always)
    static func transformZY<T: TransformValue>(_ r: inout InlineArray<16, T>) {
        for l in 0..<4 {
            (r[l], r[4 + l], r[8 + l], r[12 + l]) = inputButterfly(r[l], r[4 + l], r[8 + l], r[12 + l])
        }
        for k in 0..<4 {
            (r[k * 4], r[k * 4 + 1], r[k * 4 + 2], r[k * 4 + 3]) = inputButterfly(r[k * 4], r[k * 4 + 1], r[k * 4 + 2], r[k * 4 + 3])
        }
    }

    /// `Y = Aᵀ M A` for the segment's tiles of one destination channel, plus `bias`, rectified
    /// (`y > 0 ? y : slope·y`) when `slope` is given, stored into
    /// the channel's `[D, H, W]` grid (voxels past the grid's edge dropped).
    @inline(__always)
    static func transformOutput(
        _ plan: Plan, segment: Segment, products: UnsafePointer<Float>, pointStride: Int, bias: Float, slope: Float?,
        into channel: UnsafeMutablePointer<Float>
    ) {
        let deep = plan.kernelDepth == 3
        let (depth, height, width) = (plan.depth, plan.height, plan.width)
        let p = products + segment.lane
        @inline(__always) func load(_ xi: Int) -> ConvVector { loadVector(p + xi * pointStride) }
        let zRows = deep ? 4 : 1
        // Aᵀ along x, then y, on patch slice k (z): the 2 × 2 output vectors
        // (py 0 px 0, py 0 px 1, py 1 px 0, py 1 px 1); px = 0 / 1 are the even / odd columns.
        @inline(__always) func slice(_ k: Int) -> (ConvVector, ConvVector, ConvVector, ConvVector) {
            @inline(__always) func row(_ l: Int) -> (ConvVector, ConvVector) {
                let r = 4 * (k * 4 + l)
                let (a, b, c, d) = (load(r), load(r + 1), load(r + 2), load(r + 3))
                return (a + b + c, b - c - d)
            }
            let (e0, o0) = row(0), (e1, o1) = row(1), (e2, o2) = row(2), (e3, o3) = row(3)
            return (e0 + e1 + e2, o0 + o1 + o2, e1 - e2 - e3, o1 - o2 - o3)
        }
        // Then along z: output slice 0 = a + b + c, slice 1 = b − c − d of the patch slices.
        var near = slice(0)
        var far = near
        if zRows == 4 {
            let (b, c, d) = (slice(1), slice(2), slice(3))
            near = (near.0 + b.0 + c.0, near.1 + b.1 + c.1, near.2 + b.2 + c.2, near.3 + b.3 + c.3)
            far = (b.0 - c.0 - d.0, b.1 - c.1 - d.1, b.2 - c.2 - d.2, b.3 - c.3 - d.3)
        }
        let biasVector = ConvVector(repeating: bias)
        let x0 = 2 * segment.tx
        let columns = Swift.min(2 * segment.count, width - x0)
        // The rows of the next tile row, for writing (see `transformInput`).
        for pz in 0..<(deep ? 2 : 1) {
            let z = deep ? 2 * segment.tz + pz : segment.tz
            guard z < depth else { continue }
            for y in (2 * segment.ty + 2)..<Swift.max(2 * segment.ty + 2, Swift.min(2 * segment.ty + 4, height)) {
                prefetchFloats(channel + (z * height + y) * width + x0, count: columns, forWriting: true)
            }
        }
        for pz in 0..<(deep ? 2 : 1) {
            let z = deep ? 2 * segment.tz + pz : segment.tz
            guard z < depth else { continue }
            let plane = pz == 0 ? near : far
            for py in 0..<2 {
                let yy = 2 * segment.ty + py
                guard yy < height else { continue }
                var even = py == 0 ? plane.0 : plane.2
                var odd = py == 0 ? plane.1 : plane.3
                even += biasVector
                odd += biasVector
                if let slope {
                    even = Rectification.scaled(even, sign: even, slope: slope)
                    odd = Rectification.scaled(odd, sign: odd, slope: slope)
                }
                let out = channel + (z * height + yy) * width + x0
                if columns == 32 {
                    storeInterleaved(even, odd, slope: nil, into: out)
                } else {
                    for i in 0..<(columns / 2) {
                        out[2 * i] = even[i]
                        out[2 * i + 1] = odd[i]
                    }
                    if columns % 2 == 1 { out[columns - 1] = even[columns / 2] }
                }
            }
        }
    }

    /// 32 output columns from their even and odd ones, rectified when `slope` is given (the
    /// output transforms' last step, 2D and 3D).
    @inline(__always)
    static func storeInterleaved(_ evenValues: ConvVector, _ oddValues: ConvVector, slope: Float?, into out: UnsafeMutablePointer<Float>) {
        var (even, odd) = (evenValues, oddValues)
        if let slope {
            even = Rectification.scaled(even, sign: even, slope: slope)
            odd = Rectification.scaled(odd, sign: odd, slope: slope)
        }
        var pairs = SIMD32<Float>()
        pairs.evenHalf = even
        pairs.oddHalf = odd
        UnsafeMutableRawPointer(out).storeBytes(of: pairs, as: SIMD32<Float>.self)
    }
}

/// What the Winograd transforms compute on: one float (a single tile) or a vector of 16 tiles.
@usableFromInline protocol TransformValue {
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
}
extension Float: TransformValue {}
extension SIMD16: TransformValue where Scalar == Float {}
