/// The 2D Winograd transforms of interior segments: 16 whole tiles whose patch rows are all
/// inside the grid, which on a 2D layer of 128² or more is all but a few per cent of them.
///
/// `transformInput` and `transformOutput` handle every case (3D, the grid's edges, rows that
/// end inside a segment, short segments) one channel per call, with the bounds and offsets
/// worked out again for each channel, through a scratch of patch rows. For 2D, where a channel's
/// work is 16 loads and stores, that bookkeeping and two store-forwarding stalls (a vector load
/// one float past a scratch row's start, over a vector and a scalar store) were most of the
/// transform. Here a segment's offsets and edges are found once and its channels run in a loop;
/// a patch row's four x-points are the even or odd lanes of 32 floats read at x − 1, x and
/// x + 2, so nothing is shifted, inserted or staged; the y pass and the output's interleave
/// are in registers.
///
/// Measured (Emerald Rapids, 2 threads, AVX-512, medians of 3 alternated rounds): 32 → 32 @ 128²
/// forward 0.88–0.99 → 0.78–0.83 ms (b1), 6.7 → 6.2–6.3 ms (b8).
///
/// Codegen: the functions here are kept out of line (`@inline(never)` on the per-segment and
/// per-channel ones, `@inline(always)` on the row). Inlined into `run`, the optimiser stopped
/// inlining the standard library's SIMD32 accessors (calls, the vectors through the stack);
/// nested local functions were left as calls despite `@inline(__always)`, and one function
/// holding all four rows had its lane permutes split into 128-bit pieces. Each measured 2–3×
/// slower than this layout; check `perf annotate` after changing it.
extension WinogradConvolution {
    /// Whether `transformInteriorPlanar` and `transformOutputInteriorPlanar` take a 2D segment:
    /// 16 tiles (a segment cut short by the end of its block must not write the next block's
    /// voxels), their 32 columns inside the row, their four patch rows inside the grid and one
    /// more row after them (the input transform reads two floats past a row's 32: in that row,
    /// or the next). All but the first and last two tile rows, the last segment of a row whose
    /// tiles do not fill 16 lanes, and the segments a block boundary cuts.
    @inline(__always)
    static func isInteriorPlanar(_ plan: Plan, _ segment: Segment) -> Bool {
        plan.kernelDepth == 1 && segment.count == 16 && segment.ty >= 1 && 2 * segment.ty + 4 <= plan.height
            && 2 * segment.tx + 32 <= plan.width
    }

    /// `transformInput` for all `count` source channels of an interior segment
    /// (`isInteriorPlanar`), channel s read from `channels[s]` (rectified by `rectifierBases[s]`
    /// when `slope` is given) and written at `into + s·channelStride`. The per-segment work —
    /// row offsets, bounds, the rectifier's presence — is done once, not per channel.
    ///
    /// Codegen (see the file's doc): this function and `interiorPlanarChannel` stay out of line.
    @inline(never)
    static func transformInteriorPlanar(
        _ plan: Plan, segment: Segment, channels: UnsafePointer<UnsafePointer<Float>>,
        rectifierBases: UnsafePointer<UnsafePointer<Float>>, slope: Float?, count: Int,
        into: UnsafeMutablePointer<Float>, channelStride: Int, pointStride: Int
    ) {
        let width = plan.width
        let base = 2 * segment.tx
        // Patch row 0 at column x = base; rows l = 0 ..< 4 follow at l·width. Row 0 is row
        // 2·ty − 1 ≥ 1, so the float before its column `base` is in the plane.
        let origin = (segment.tz * plan.height + 2 * segment.ty - 1) * width + base
        // The lanes that read outside the row: x[base − 1] (lane 0 of `even`) when base = 0 and
        // x[base + 32] (lane 15 of `oddNext`) when the row ends at base + 32; zero padding there.
        let lanes = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        let padding = (first: lanes .== 0 .& (base == 0 ? .init(repeating: true) : .init(repeating: false)),
                       last: lanes .== 15 .& (base + 32 == width ? .init(repeating: true) : .init(repeating: false)))
        let prefetch = 2 * segment.ty + 5 <= plan.height
        let out = into + segment.lane
        // Without a rectifier the signs are never read (`rectified` false); they point at the input.
        if let slope {
            for s in 0..<count {
                interiorPlanarChannel(channels[s] + origin, signs: rectifierBases[s] + origin, rectified: true, slope: slope,
                                      width: width, padding: padding, prefetch: prefetch, into: out + s * channelStride,
                                      pointStride: pointStride)
            }
        } else {
            for s in 0..<count {
                interiorPlanarChannel(channels[s] + origin, signs: channels[s] + origin, rectified: false, slope: 0,
                                      width: width, padding: padding, prefetch: prefetch, into: out + s * channelStride,
                                      pointStride: pointStride)
            }
        }
    }

    /// One channel of `transformInteriorPlanar`: the 16 points of 16 tiles whose patch rows start
    /// at `channel` (column x = base), rectified by `signs` when `rectified`.
    @inline(never)
    static func interiorPlanarChannel(
        _ channel: UnsafePointer<Float>, signs: UnsafePointer<Float>, rectified: Bool, slope: Float, width: Int,
        padding: (first: LaneMask, last: LaneMask), prefetch: Bool, into out: UnsafeMutablePointer<Float>, pointStride: Int
    ) {
        let r0 = interiorPlanarRow(channel, signs: signs, rectified: rectified, slope: slope, padding: padding)
        let r1 = interiorPlanarRow(channel + width, signs: signs + width, rectified: rectified, slope: slope, padding: padding)
        let r2 = interiorPlanarRow(channel + 2 * width, signs: signs + 2 * width, rectified: rectified, slope: slope, padding: padding)
        let r3 = interiorPlanarRow(channel + 3 * width, signs: signs + 3 * width, rectified: rectified, slope: slope, padding: padding)
        // The rows the next tile row adds (see `transformInput`).
        if prefetch {
            prefetchFloats(channel + 4 * width - 1, count: 34)
            prefetchFloats(channel + 5 * width - 1, count: 34)
            if rectified {
                prefetchFloats(signs + 4 * width - 1, count: 34)
                prefetchFloats(signs + 5 * width - 1, count: 34)
            }
        }
        // Bᵀ along y, point ξ = 4·(y point) + (x point).
        var (p0, p1, p2, p3) = inputButterfly(r0.0, r1.0, r2.0, r3.0)
        storeVector(p0, out)
        storeVector(p1, out + 4 * pointStride)
        storeVector(p2, out + 8 * pointStride)
        storeVector(p3, out + 12 * pointStride)
        (p0, p1, p2, p3) = inputButterfly(r0.1, r1.1, r2.1, r3.1)
        storeVector(p0, out + pointStride)
        storeVector(p1, out + 5 * pointStride)
        storeVector(p2, out + 9 * pointStride)
        storeVector(p3, out + 13 * pointStride)
        (p0, p1, p2, p3) = inputButterfly(r0.2, r1.2, r2.2, r3.2)
        storeVector(p0, out + 2 * pointStride)
        storeVector(p1, out + 6 * pointStride)
        storeVector(p2, out + 10 * pointStride)
        storeVector(p3, out + 14 * pointStride)
        (p0, p1, p2, p3) = inputButterfly(r0.3, r1.3, r2.3, r3.3)
        storeVector(p0, out + 3 * pointStride)
        storeVector(p1, out + 7 * pointStride)
        storeVector(p2, out + 11 * pointStride)
        storeVector(p3, out + 15 * pointStride)
    }

    /// Bᵀ along x of one patch row starting at `p` (column x = base): tile t reads (even[t],
    /// odd[t], even[t+1], odd[t+1]) with even[t] = x[base − 1 + 2t], odd[t] = x[base + 2t].
    /// Each is the even or odd lanes of 32 floats read from p − 1, p or p + 2, so no lane has to
    /// be shifted or inserted; `padding` zeroes the two that fall outside the row.
    @inline(always)
    static func interiorPlanarRow(_ p: UnsafePointer<Float>, signs: UnsafePointer<Float>, rectified: Bool, slope: Float,
                                  padding: (first: LaneMask, last: LaneMask)) -> (ConvVector, ConvVector, ConvVector, ConvVector) {
        @inline(__always) func pair(_ q: UnsafePointer<Float>) -> SIMD32<Float> {
            SIMD32(lowHalf: loadVector(q), highHalf: loadVector(q + 16))
        }
        let (before, here, after) = (pair(p - 1), pair(p), pair(p + 2))
        var even = evenLanes(before).replacing(with: 0, where: padding.first)
        var (odd, evenNext) = (evenLanes(here), oddLanes(here))
        var oddNext = evenLanes(after).replacing(with: 0, where: padding.last)
        if rectified {
            let (yBefore, yHere, yAfter) = (pair(signs - 1), pair(signs), pair(signs + 2))
            even = Rectification.scaled(even, sign: evenLanes(yBefore), slope: slope)
            odd = Rectification.scaled(odd, sign: evenLanes(yHere), slope: slope)
            evenNext = Rectification.scaled(evenNext, sign: oddLanes(yHere), slope: slope)
            oddNext = Rectification.scaled(oddNext, sign: evenLanes(yAfter), slope: slope)
        }
        return inputButterfly(even, odd, evenNext, oddNext)
    }

    /// `transformOutput` for all `count` destination channels of an interior 2D segment
    /// (`isInteriorPlanar`): channel d's products at `products + d·channelStride`, its bias
    /// `bias[d]`, its grid at `into + d·channelVolume`. Not inlined, for the reason above.
    @inline(never)
    static func transformOutputInteriorPlanar(
        _ plan: Plan, segment: Segment, products: UnsafePointer<Float>, channelStride: Int, pointStride: Int, count: Int,
        bias: UnsafePointer<Float>, slope: Float?, into: UnsafeMutablePointer<Float>, channelVolume: Int
    ) {
        let width = plan.width
        let origin = (segment.tz * plan.height + 2 * segment.ty) * width + 2 * segment.tx
        let p = products + segment.lane
        let out = into + origin
        if let slope {
            for d in 0..<count {
                outputPlanarChannel(p + d * channelStride, pointStride: pointStride, bias: bias[d], slope: slope,
                                    into: out + d * channelVolume, width: width)
            }
        } else {
            for d in 0..<count {
                outputPlanarChannel(p + d * channelStride, pointStride: pointStride, bias: bias[d], slope: nil,
                                    into: out + d * channelVolume, width: width)
            }
        }
    }

    /// `Y = Aᵀ M A` + bias (rectified when `slope` is given) of 16 whole tiles: rows `out` and
    /// `out + width`, 32 columns each.
    @inline(__always)
    static func outputPlanarChannel(_ p: UnsafePointer<Float>, pointStride: Int, bias: Float, slope: Float?,
                                    into out: UnsafeMutablePointer<Float>, width: Int) {
        var (a, b, c, d) = (loadVector(p), loadVector(p + pointStride), loadVector(p + 2 * pointStride), loadVector(p + 3 * pointStride))
        let (e0, o0) = (a + b + c, b - c - d)
        (a, b, c, d) = (loadVector(p + 4 * pointStride), loadVector(p + 5 * pointStride), loadVector(p + 6 * pointStride),
                        loadVector(p + 7 * pointStride))
        let (e1, o1) = (a + b + c, b - c - d)
        (a, b, c, d) = (loadVector(p + 8 * pointStride), loadVector(p + 9 * pointStride), loadVector(p + 10 * pointStride),
                        loadVector(p + 11 * pointStride))
        let (e2, o2) = (a + b + c, b - c - d)
        (a, b, c, d) = (loadVector(p + 12 * pointStride), loadVector(p + 13 * pointStride), loadVector(p + 14 * pointStride),
                        loadVector(p + 15 * pointStride))
        let (e3, o3) = (a + b + c, b - c - d)
        let biasVector = ConvVector(repeating: bias)
        storeInterleaved(e0 + e1 + e2 + biasVector, o0 + o1 + o2 + biasVector, slope: slope, into: out)
        storeInterleaved(e1 - e2 - e3 + biasVector, o1 - o2 - o3 + biasVector, slope: slope, into: out + width)
    }
}
