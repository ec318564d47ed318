/// Winograd F(2, 3) on a part that a convolution reads nearest-up-sampled ×2 (VoxelMorph's
/// decoder: `conv(concat(upsample(coarse), skip))`), computed on the coarse grid both ways.
///
/// **Forward.** Along one axis, tile t covers output voxels 2t and 2t + 1 and reads the patch
/// 2t − 1 … 2t + 2. Up-sampled by repetition, `u[2i] = u[2i + 1] = c[i]`, that patch is
/// `(c[t − 1], c[t], c[t], c[t + 1])`, and Bᵀ gives
///
///     (p0 − p2, p1 + p2, p2 − p1, p1 − p3) = (c[t−1] − c[t], 2·c[t], 0, c[t] − c[t+1]):
///
/// tile t is coarse voxel t, and point 2 of every axis is zero. Of the 64 transform points of a
/// 3D tile only the 27 with no index 2 are nonzero (9 of 16 in 2D), so those 37 (7) points'
/// products skip the up-sampled channels (`WinogradConvolution.run`), and the transform reads
/// 27 coarse voxels per tile instead of 64 fine ones.
///
/// **Data gradient.** The up-sampling's adjoint sums each tile's 2 × 2 (× 2) gradient voxels
/// onto its coarse voxel. Summed over a tile's two outputs, Aᵀ's rows (1, 1, 1, 0) and
/// (0, 1, −1, −1) give (1, 2, 0, −1) per axis, so the coarse gradient is
/// `Σ_ξ a(ξ)·M[ξ]` over the same 27 (9) points, with a the product of the axes' weights: the
/// other points' products are not needed at all.
///
/// Both are exact rewrites: the same values as convolving the up-sampled tensor (and summing
/// its gradient) to float32 rounding, without building it (880 MB for 32 channels at
/// 160×192×224).
extension WinogradConvolution {
    /// A part stored on the coarse grid `[N, channels, D/2, H/2, W/2]` (`[N, channels, 1, H/2,
    /// W/2]` for 2D passes) and read up-sampled ×2, nearest, onto the pass's grid.
    struct UpsampledPart {
        let base: UnsafePointer<Float>
        let channels: Int
        let extent: SpatialExtent

        /// Whether this part's up-sampling is exactly ×2 onto `plan`'s grid (every axis the
        /// kernel spans; a 2D pass keeps its depth), the case `transformUpsampledInput` handles.
        func fits(_ plan: Plan) -> Bool { Self.fits(extent, plan) }

        /// Whether `plan`'s grid is exactly `coarse` up-sampled ×2 on every axis the kernel
        /// spans (a 2D pass keeps its depth 1).
        static func fits(_ coarse: SpatialExtent, _ plan: Plan) -> Bool {
            let depthMatches = plan.kernelDepth == 3 ? 2 * coarse.d == plan.depth : (plan.depth == 1 && coarse.d == 1)
            return depthMatches && 2 * coarse.h == plan.height && 2 * coarse.w == plan.width
        }

        /// `transformUpsampledInput` of every channel of the part for the segment's tiles:
        /// channel s's V rows at `into + s·channelStride`. `rows`: the worker's transform scratch.
        @inline(__always)
        func transformInput(_ plan: Plan, segment: Segment, rows: UnsafeMutablePointer<Float>, into: UnsafeMutablePointer<Float>,
                            channelStride: Int, pointStride: Int) {
            let item = base + segment.n * channels * extent.count
            for s in 0..<channels {
                WinogradConvolution.transformUpsampledInput(plan, segment: segment, extent: extent, channel: item + s * extent.count,
                                                            scratch: rows, staging: rows + 16 * 64, into: into + s * channelStride,
                                                            pointStride: pointStride)
            }
        }

        /// Whether transform point ξ is one of those with an index 2 on some axis: zero for this
        /// part, so its product skips the part's channels.
        static func isZeroPoint(_ xi: Int, deep: Bool) -> Bool {
            let (x, y, z) = (xi % 4, (xi / 4) % 4, xi / 16)
            return x == 2 || y == 2 || (deep && z == 2)
        }
    }

    /// `V[ξ][tile] = (Bᵀ u B)[ξ]` for the segment's tiles of one up-sampled channel, from its
    /// coarse grid `channel` `[D/2, H/2, W/2]`: written at `into + ξ·pointStride + lane` for the
    /// 27 (9) nonzero points only. `scratch`: 27 vectors (432 floats) for the x and y passes;
    /// `staging`: 32 floats for rows near the grid's edge.
    @inline(__always)
    static func transformUpsampledInput(
        _ plan: Plan, segment: Segment, extent: SpatialExtent, channel: UnsafePointer<Float>,
        scratch: UnsafeMutablePointer<Float>, staging: UnsafeMutablePointer<Float>, into: UnsafeMutablePointer<Float>, pointStride: Int
    ) {
        let deep = plan.kernelDepth == 3
        let (depth, height, width) = (extent.d, extent.h, extent.w)
        let slices = deep ? 3 : 1
        // r(k, l, slot): vector ((k·3 + l)·3 + slot) of `scratch`.
        @inline(__always) func r(_ k: Int, _ l: Int, _ slot: Int) -> UnsafeMutablePointer<Float> { scratch + ((k * 3 + l) * 3 + slot) * 16 }
        // Along x, on the coarse rows (z − 1 … z + 1) × (y − 1 … y + 1) around the tiles: the
        // components at slots (0, 1, 2) = transform index (0, 1, 3); zero rows in the padding.
        for k in 0..<slices {
            let z = deep ? segment.tz - 1 + k : segment.tz
            for l in 0..<3 {
                let y = segment.ty - 1 + l
                var (left, centre, right) = (ConvVector(), ConvVector(), ConvVector())
                if z >= 0 && z < depth && y >= 0 && y < height {
                    (left, centre, right) = coarseRow(channel + (z * height + y) * width, x: segment.tx, width: width, staging: staging)
                }
                for slot in 0..<3 { storeVector(threePoint(left, centre, right, slot: slot), r(k, l, slot)) }
            }
        }
        // The same rule along y, in place.
        for k in 0..<slices {
            for sx in 0..<3 {
                let (a, b, c) = (loadVector(r(k, 0, sx)), loadVector(r(k, 1, sx)), loadVector(r(k, 2, sx)))
                for sy in 0..<3 { storeVector(threePoint(a, b, c, slot: sy), r(k, sy, sx)) }
            }
        }
        // Then along z, stored at ξ = (iz·4 + iy)·4 + ix.
        let out = into + segment.lane
        for sy in 0..<3 {
            for sx in 0..<3 {
                let a = loadVector(r(0, sy, sx))
                let (b, c) = deep ? (loadVector(r(1, sy, sx)), loadVector(r(2, sy, sx))) : (a, a)
                for sz in 0..<slices {
                    let xi = ((sz == 2 ? 3 : sz) * 4 + (sy == 2 ? 3 : sy)) * 4 + (sx == 2 ? 3 : sx)
                    storeVector(deep ? threePoint(a, b, c, slot: sz) : a, out + xi * pointStride)
                }
            }
        }
    }

    /// Bᵀ of the patch `(a, b, b, c)` at nonzero slot 0, 1, 2 (transform index 0, 1, 3):
    /// `a − b`, `2b`, `b − c`.
    @inline(__always)
    static func threePoint(_ a: ConvVector, _ b: ConvVector, _ c: ConvVector, slot: Int) -> ConvVector {
        slot == 0 ? a - b : slot == 1 ? b + b : b - c
    }

    /// The coarse gradient `Σ_ξ a(ξ)·M[ξ]` (a = (1, 2, 0, −1) per axis) for the segment's tiles
    /// of one destination channel, stored into the channel's coarse `[D/2, H/2, W/2]` grid.
    @inline(__always)
    static func transformOutputSummed(
        _ plan: Plan, segment: Segment, extent: SpatialExtent, products: UnsafePointer<Float>, pointStride: Int,
        into channel: UnsafeMutablePointer<Float>
    ) {
        let deep = plan.kernelDepth == 3
        let p = products + segment.lane
        // (1, 2, −1)·(M[…0], M[…1], M[…3]) along x, then y, then z.
        @inline(__always) func row(_ zy: Int) -> ConvVector {
            let q = p + zy * 4 * pointStride
            let middle = loadVector(q + pointStride)
            return loadVector(q) + middle + middle - loadVector(q + 3 * pointStride)
        }
        @inline(__always) func slice(_ z: Int) -> ConvVector {
            let middle = row(z * 4 + 1)
            return row(z * 4) + middle + middle - row(z * 4 + 3)
        }
        var sum = slice(0)
        if deep {
            let middle = slice(1)
            sum = sum + middle + middle - slice(3)
        }
        let out = channel + (segment.tz * extent.h + segment.ty) * extent.w + segment.tx
        if segment.count == 16 {
            storeVector(sum, out)
        } else {
            for i in 0..<segment.count { out[i] = sum[i] }
        }
    }

    /// Coarse row voxels `x − 1 …`, `x …` and `x + 1 …` (16 lanes each), zero outside
    /// `0 ..< width` (the padding); lanes past the row's end read zeros through `staging`.
    @inline(__always)
    static func coarseRow(_ row: UnsafePointer<Float>, x: Int, width: Int,
                          staging: UnsafeMutablePointer<Float>) -> (ConvVector, ConvVector, ConvVector) {
        if x >= 1 && x + 17 <= width {
            return (loadVector(row + x - 1), loadVector(row + x), loadVector(row + x + 1))
        }
        if x + 16 <= width {
            // A full centre at a row end: its neighbours by a lane shift with a zero at the end
            // (a permute), not by vector loads over scalar stores to `staging`, which cannot be
            // store-forwarded (that stall was ~1/5 of the full-resolution registration's driver).
            let centre = loadVector(row + x)
            let left = x >= 1 ? loadVector(row + x - 1) : shiftedUp(centre)
            let right = x + 17 <= width ? loadVector(row + x + 1) : shiftedDown(centre)
            return (left, centre, right)
        }
        for j in 0..<18 {
            let at = x - 1 + j
            staging[j] = at >= 0 && at < width ? row[at] : 0
        }
        return (loadVector(staging), loadVector(staging + 1), loadVector(staging + 2))
    }
}
