import Foundation

/// The two register-blocked inner loops every convolution here ends in. Both read a *slab*
/// (see `ConvolutionSlab`): a zero-padded, stride-phase-split copy of the source rows of one
/// tile, in which every kernel tap is a constant offset and every output position a unit step,
/// so the same loop serves stride 1 and 2, kernel 1 to 3, 2D and 3D.
///
/// The kernels are generic over their register block (`M`, `R`, `V` are value generics with
/// `InlineArray` accumulators); the optimiser unrolls them into straight-line AVX-512 (or AVX2)
/// code, and the block sizes come from the compiled register file (`VectorRegisters`).
/// Check after changing them: `llvm-objdump -d .build/release/MorphoKernels.build/
/// ConvolutionMicrokernels.swift.o` shows, with AVX-512, the tap loop of `SpatialTile<8, 3>` as
/// 1 offset load, 3 `vmovups` zmm loads, 8 `vbroadcastss`, 24 `vfmadd231ps` on zmm
/// accumulators, no calls and no stack traffic, and `WeightGradientTile<1, 8>` as `vfmadd231ps`
/// with `{1to16}` broadcast memory operands; with AVX2, `SpatialTile<6, 1>` as 2 ymm loads,
/// 6 `vbroadcastss` and 12 `vfmadd231ps` on ymm accumulators, again with no stack traffic. `Convolution` only calls the instances in the switches below.
typealias ConvVector = SIMD16<Float>

@inline(__always)
func loadVector(_ p: UnsafePointer<Float>) -> ConvVector {
    UnsafeRawPointer(p).loadUnaligned(as: ConvVector.self)
}

@inline(__always)
func storeVector(_ v: ConvVector, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: ConvVector.self)
}

/// The even lanes (0, 2, …, 30) and the odd lanes (1, 3, …, 31) of 32 floats. Written as lane
/// loops the optimiser folds into permutes; the standard library's `oddHalf` getter was left as a
/// call (the 32 floats passed through memory) in the 16×16 transposes. (The opposite way, lane
/// loops are not folded: the Winograd output transform interleaves through the standard
/// library's `evenHalf` / `oddHalf` setters, which compile to permutes.)
@inline(__always)
func evenLanes(_ v: SIMD32<Float>) -> ConvVector {
    var out = ConvVector()
    for i in 0..<16 { out[i] = v[2 * i] }
    return out
}

@inline(__always)
func oddLanes(_ v: SIMD32<Float>) -> ConvVector {
    var out = ConvVector()
    for i in 0..<16 { out[i] = v[2 * i + 1] }
    return out
}

/// Arguments of one `SpatialTile` call. The R position vectors are consecutive in a grid of
/// rows of `vectorsPerRow` vectors, starting at (`row`, `vector`): vector (ql, v) reads the
/// slab at `source + ql·sourceRowStride + 16·v` (+ tap offset) and writes channel m at
/// `output + ql·outputRowStride + 16·v + m·outputStride`. Plain scalars, so setting up a call
/// costs a few register moves.
struct SpatialTileArguments {
    /// Reduction length: source channels × taps.
    var taps: Int
    /// Slab offset of every tap, `taps` entries.
    var offsets: UnsafePointer<Int>
    /// Packed weights of the channel block, `[taps][M]`.
    var weights: UnsafePointer<Float>
    /// M values added to every output of the block (the bias, or zeros).
    var bias: UnsafePointer<Float>
    var source: UnsafePointer<Float>
    var sourceRowStride: Int
    var output: UnsafeMutablePointer<Float>
    var outputRowStride: Int
    /// Between output channels.
    var outputStride: Int
    var vectorsPerRow: Int
    var row: Int
    var vector: Int
    /// Start from the values already in the outputs instead of the bias: the second and later
    /// chunks of a reduction split into cache-sized chunks (see `Convolution.tapChunks`).
    var accumulate: Bool = false

    /// Points the call at reduction chunk `chunk` of the tap offsets `offsets`: the first chunk
    /// starts from the bias, later ones add to the outputs.
    @inline(__always)
    mutating func select(_ chunk: Range<Int>, first: Bool, offsets: UnsafePointer<Int>) {
        taps = chunk.count
        self.offsets = offsets + chunk.lowerBound
        accumulate = !first
    }
}

/// Output channels `M` × `R` vectors of 16 consecutive output positions:
/// `out[m][r] = bias[m] + Σ_t w[t][m] · slab[source(r) + offset[t] ..< +16]` — weights
/// broadcast, positions vectorised. Per tap: R unaligned loads, M broadcasts, M·R FMAs.
/// The forward pass and every phase of the data gradient run here.
struct SpatialTile<let M: Int, let R: Int> {
    @inline(__always)
    static func run(_ a: SpatialTileArguments) {
        var output = InlineArray<R, UnsafeMutablePointer<Float>>(repeating: a.output)
        var source = InlineArray<R, UnsafePointer<Float>>(repeating: a.source)
        var (row, vector) = (a.row, a.vector)
        for r in 0..<R {
            source[r] = a.source + row * a.sourceRowStride + 16 * vector
            output[r] = a.output + row * a.outputRowStride + 16 * vector
            vector += 1
            if vector == a.vectorsPerRow { vector = 0; row += 1 }
        }
        var acc = InlineArray<M, InlineArray<R, ConvVector>>(repeating: InlineArray<R, ConvVector>(repeating: ConvVector()))
        if a.accumulate {
            for m in 0..<M {
                for r in 0..<R { acc[m][r] = loadVector(output[r] + m * a.outputStride) }
            }
        } else {
            for m in 0..<M {
                let b = ConvVector(repeating: a.bias[m])
                for r in 0..<R { acc[m][r] = b }
            }
        }
        var w = a.weights
        for t in 0..<a.taps {
            let o = a.offsets[t]
            var x = InlineArray<R, ConvVector>(repeating: ConvVector())
            for r in 0..<R { x[r] = loadVector(source[r] + o) }
            for m in 0..<M {
                let b = ConvVector(repeating: w[m])
                for r in 0..<R { acc[m][r] = acc[m][r].addingProduct(x[r], b) }
            }
            w += M
        }
        // Channel-outer store order: with position-outer, LLVM keeps a stack copy of the
        // accumulators and writes it back on every tap (24 extra stores per 24 FMAs).
        for m in 0..<M {
            for r in 0..<R { storeVector(acc[m][r], output[r] + m * a.outputStride) }
        }
    }
}

/// Arguments of one `WeightGradientTile` call.
struct WeightGradientTileArguments {
    /// Output positions swept (scalar steps).
    var positions: Int
    /// Channel-last gradient tile at the first position and first channel vector:
    /// `[position][channel]`, positions `gradOutStride` floats apart.
    var gradOut: UnsafePointer<Float>
    var gradOutStride: Int
    /// Slab address of the first position.
    var slab: UnsafePointer<Float>
    /// Slab offsets of the R taps.
    var offsets: UnsafePointer<Int>
    /// Running sums `[tap][channel]` for the R taps, rows `accumulatorStride` apart; updated in place.
    var accumulator: UnsafeMutablePointer<Float>
    var accumulatorStride: Int
}

/// `V` vectors of 16 output channels × `R` taps, summed over positions:
/// `acc[r][c] += Σ_p gradOut[p][c] · slab[offset[r] + p]` — the gradient is channel-last so the
/// reduction over positions needs no horizontal sums; slab values are broadcast.
/// Per position: V loads, R broadcasts, V·R FMAs. The weight gradient runs here.
struct WeightGradientTile<let V: Int, let R: Int> {
    @inline(__always)
    static func run(_ a: WeightGradientTileArguments) {
        var tap = InlineArray<R, UnsafePointer<Float>>(repeating: a.slab)
        for r in 0..<R { tap[r] = a.slab + a.offsets[r] }
        var acc = InlineArray<R, InlineArray<V, ConvVector>>(repeating: InlineArray<V, ConvVector>(repeating: ConvVector()))
        for r in 0..<R {
            for v in 0..<V { acc[r][v] = loadVector(a.accumulator + r * a.accumulatorStride + 16 * v) }
        }
        var g = a.gradOut
        for p in 0..<a.positions {
            var gv = InlineArray<V, ConvVector>(repeating: ConvVector())
            for v in 0..<V { gv[v] = loadVector(g + 16 * v) }
            for r in 0..<R {
                let b = ConvVector(repeating: tap[r][p])
                for v in 0..<V { acc[r][v] = acc[r][v].addingProduct(gv[v], b) }
            }
            g += a.gradOutStride
        }
        for r in 0..<R {
            for v in 0..<V { storeVector(acc[r][v], a.accumulator + r * a.accumulatorStride + 16 * v) }
        }
    }
}

enum ConvolutionMicrokernel {
    /// Whether the register blocks below are sized for 32 zmm (AVX-512) or 16 ymm (AVX2): the
    /// register file the binary was compiled for (`VectorRegisters.hasAVX512`), so an AVX2 build
    /// (`MORPHOSEG_TARGET_CPU=x86-64-v3`) runs the AVX2 blocks on an AVX-512 CPU too. Tests also
    /// set it to false in an AVX-512 build to run the AVX2 block sizes (and AVX2's reduction
    /// chunks) on zmm code: other block sizes, which must give the same results (they only spill
    /// registers there); only an AVX2 build measures the AVX2 path.
    nonisolated(unsafe) static var blocksForAVX512 = VectorRegisters.hasAVX512

    /// Widest position block `R` (in vectors) for `m` output channels. The M·R accumulators,
    /// the R loaded vectors and one broadcast must fit the register file (`VectorRegisters`):
    /// with 32 zmm, M·R ≤ 24; with 16 ymm (two per vector), 2·M·R + 2·R + 1 ≤ 16, which leaves
    /// M ≤ 6 and the classic 6 × 16 AVX2 block.
    static func spatialBlock(channels m: Int) -> Int {
        if !blocksForAVX512 {
            switch m {
            case 1: return 3
            case 2: return 2
            default: return 1
            }
        }
        switch m {
        case 1, 2: return 8
        case 3: return 7
        case 4: return 6
        case 5, 6: return 4
        default: return 3
        }
    }

    /// Largest channel block of `SpatialTile`: 8 with 32 zmm, 6 with 16 ymm.
    static var spatialChannels: Int { blocksForAVX512 ? 8 : 6 }
    /// Largest tap block of `WeightGradientTile`: V·R accumulators + V loads + 1 broadcast
    /// (8·2 + 2 with AVX-512's memory broadcasts; with AVX2 2·6 + 2 + 1 = 15 ymm).
    static var weightGradientTaps: Int { blocksForAVX512 ? 8 : 6 }
    /// `0 ..< taps` cut into `WeightGradientTile` tap blocks of near-equal size (27 → 7, 7, 7, 6):
    /// a short last block would leave too few independent accumulators to hide the FMA latency.
    static func weightGradientTapBlocks(_ taps: Int) -> [Range<Int>] {
        let blocks = (taps + weightGradientTaps - 1) / weightGradientTaps
        return (0..<blocks).map { b in (b * taps / blocks)..<((b + 1) * taps / blocks) }
    }
    /// Largest channel-vector block of `WeightGradientTile`.
    static var weightGradientVectors: Int { blocksForAVX512 ? 2 : 1 }
    /// Taps per reduction chunk of `SpatialTile` calls (`Convolution.tapChunks`); 0 = whole
    /// reductions. Chunked on AVX2, whose 16-voxel calls otherwise overflow L1 (measured on a
    /// Zen 3); the AVX-512 blocks were tuned unchunked. `MORPHOSEG_TAP_CHUNK=N` overrides it.
    static var tapChunk: Int { tapChunkOverride ?? (blocksForAVX512 ? 0 : 128) }
    private static let tapChunkOverride: Int? = ProcessInfo.processInfo.environment["MORPHOSEG_TAP_CHUNK"].flatMap { Int($0) }

    /// Runs `SpatialTile<m, r>` (1 ≤ m ≤ 8, 1 ≤ r ≤ spatialBlock(m)).
    static func spatial(m: Int, r: Int, _ a: SpatialTileArguments) {
        switch m {
        case 1:
            switch r {
            case 1: SpatialTile<1, 1>.run(a)
            case 2: SpatialTile<1, 2>.run(a)
            case 3: SpatialTile<1, 3>.run(a)
            case 4: SpatialTile<1, 4>.run(a)
            case 5: SpatialTile<1, 5>.run(a)
            case 6: SpatialTile<1, 6>.run(a)
            case 7: SpatialTile<1, 7>.run(a)
            case 8: SpatialTile<1, 8>.run(a)
            default: preconditionFailure("SpatialTile: no kernel for M=\(m) R=\(r)")
            }
        case 2:
            switch r {
            case 1: SpatialTile<2, 1>.run(a)
            case 2: SpatialTile<2, 2>.run(a)
            case 3: SpatialTile<2, 3>.run(a)
            case 4: SpatialTile<2, 4>.run(a)
            case 5: SpatialTile<2, 5>.run(a)
            case 6: SpatialTile<2, 6>.run(a)
            case 7: SpatialTile<2, 7>.run(a)
            case 8: SpatialTile<2, 8>.run(a)
            default: preconditionFailure("SpatialTile: no kernel for M=\(m) R=\(r)")
            }
        case 3:
            switch r {
            case 1: SpatialTile<3, 1>.run(a)
            case 2: SpatialTile<3, 2>.run(a)
            case 3: SpatialTile<3, 3>.run(a)
            case 4: SpatialTile<3, 4>.run(a)
            case 5: SpatialTile<3, 5>.run(a)
            case 6: SpatialTile<3, 6>.run(a)
            case 7: SpatialTile<3, 7>.run(a)
            default: preconditionFailure("SpatialTile: no kernel for M=\(m) R=\(r)")
            }
        case 4:
            switch r {
            case 1: SpatialTile<4, 1>.run(a)
            case 2: SpatialTile<4, 2>.run(a)
            case 3: SpatialTile<4, 3>.run(a)
            case 4: SpatialTile<4, 4>.run(a)
            case 5: SpatialTile<4, 5>.run(a)
            case 6: SpatialTile<4, 6>.run(a)
            default: preconditionFailure("SpatialTile: no kernel for M=\(m) R=\(r)")
            }
        case 5:
            switch r {
            case 1: SpatialTile<5, 1>.run(a)
            case 2: SpatialTile<5, 2>.run(a)
            case 3: SpatialTile<5, 3>.run(a)
            case 4: SpatialTile<5, 4>.run(a)
            default: preconditionFailure("SpatialTile: no kernel for M=\(m) R=\(r)")
            }
        case 6:
            switch r {
            case 1: SpatialTile<6, 1>.run(a)
            case 2: SpatialTile<6, 2>.run(a)
            case 3: SpatialTile<6, 3>.run(a)
            case 4: SpatialTile<6, 4>.run(a)
            default: preconditionFailure("SpatialTile: no kernel for M=\(m) R=\(r)")
            }
        case 7:
            switch r {
            case 1: SpatialTile<7, 1>.run(a)
            case 2: SpatialTile<7, 2>.run(a)
            case 3: SpatialTile<7, 3>.run(a)
            default: preconditionFailure("SpatialTile: no kernel for M=\(m) R=\(r)")
            }
        case 8:
            switch r {
            case 1: SpatialTile<8, 1>.run(a)
            case 2: SpatialTile<8, 2>.run(a)
            case 3: SpatialTile<8, 3>.run(a)
            default: preconditionFailure("SpatialTile: no kernel for M=\(m) R=\(r)")
            }
        default: preconditionFailure("SpatialTile: no kernel for M=\(m)")
        }
    }

    /// Runs `WeightGradientTile<v, r>` (1 ≤ v ≤ 2, 1 ≤ r ≤ 8).
    static func weightGradient(v: Int, r: Int, _ a: WeightGradientTileArguments) {
        switch v {
        case 1:
            switch r {
            case 1: WeightGradientTile<1, 1>.run(a)
            case 2: WeightGradientTile<1, 2>.run(a)
            case 3: WeightGradientTile<1, 3>.run(a)
            case 4: WeightGradientTile<1, 4>.run(a)
            case 5: WeightGradientTile<1, 5>.run(a)
            case 6: WeightGradientTile<1, 6>.run(a)
            case 7: WeightGradientTile<1, 7>.run(a)
            case 8: WeightGradientTile<1, 8>.run(a)
            default: preconditionFailure("WeightGradientTile: no kernel for V=\(v) R=\(r)")
            }
        case 2:
            switch r {
            case 1: WeightGradientTile<2, 1>.run(a)
            case 2: WeightGradientTile<2, 2>.run(a)
            case 3: WeightGradientTile<2, 3>.run(a)
            case 4: WeightGradientTile<2, 4>.run(a)
            case 5: WeightGradientTile<2, 5>.run(a)
            case 6: WeightGradientTile<2, 6>.run(a)
            case 7: WeightGradientTile<2, 7>.run(a)
            case 8: WeightGradientTile<2, 8>.run(a)
            default: preconditionFailure("WeightGradientTile: no kernel for V=\(v) R=\(r)")
            }
        default: preconditionFailure("WeightGradientTile: no kernel for V=\(v)")
        }
    }
}

/// Transposes a 16×16 block: `dst[j·dstStride + i] = src[i·srcStride + j]`.
/// Four rounds of "unzip" (even and odd lanes of two rows concatenated) rotate the 8-bit
/// (row, column) address by one bit each, so after four the two halves have swapped: 64
/// two-source permutes (`vpermt2ps`) per block instead of 256 scalar moves.
/// With `rectifier` each source row is first scaled by the rectifier's derivative read at the
/// same offset from `rectifier.output` (`y > 0 ? 1 : slope`), on whole vectors.
@inline(__always)
func transpose16x16(
    _ src: UnsafePointer<Float>, srcStride: Int, _ dst: UnsafeMutablePointer<Float>, dstStride: Int,
    rectifier: Rectification? = nil, rectifierOffset: Int = 0
) {
    var r = InlineArray<16, ConvVector>(repeating: ConvVector())
    if let rectifier {
        let y = rectifier.output + rectifierOffset
        for i in 0..<16 {
            r[i] = Rectification.scaled(loadVector(src + i * srcStride), sign: loadVector(y + i * srcStride), slope: rectifier.slope)
        }
    } else {
        for i in 0..<16 { r[i] = loadVector(src + i * srcStride) }
    }
    for _ in 0..<4 {
        var next = InlineArray<16, ConvVector>(repeating: ConvVector())
        for i in 0..<8 {
            let pair = SIMD32<Float>(lowHalf: r[2 * i], highHalf: r[2 * i + 1])
            next[i] = evenLanes(pair)
            next[i + 8] = oddLanes(pair)
        }
        r = next
    }
    for i in 0..<16 { storeVector(r[i], dst + i * dstStride) }
}
