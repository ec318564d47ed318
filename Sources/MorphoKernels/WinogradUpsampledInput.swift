/// Winograd's input transform of a part that the convolution reads nearest-up-sampled ×2
/// (VoxelMorph's decoder: `conv(concat(upsample(coarse), skip))`), computed on the coarse grid.
///
/// Along one axis, tile t of F(2, 3) covers output voxels 2t and 2t + 1 and reads the patch
/// 2t − 1 … 2t + 2. Up-sampled by repetition, `u[2i] = u[2i + 1] = c[i]`, that patch is
/// `(c[t − 1], c[t], c[t], c[t + 1])`, and Bᵀ gives
///
///     (p0 − p2, p1 + p2, p2 − p1, p1 − p3) = (c[t−1] − c[t], 2·c[t], 0, c[t] − c[t+1]):
///
/// tile t is coarse voxel t, and point 2 of every axis is zero. Of the 64 transform points of a
/// 3D tile only the 27 with no index 2 are nonzero (9 of 16 in 2D), so those 37 (7) points'
/// products skip the up-sampled channels (`WinogradConvolution.run`), and the transform reads
/// 27 coarse voxels per tile instead of 64 fine ones. Exact: the same values as transforming
/// the up-sampled tensor, without building it (880 MB for 32 channels at 160×192×224).
extension WinogradConvolution {
    /// A part stored on the coarse grid `[N, channels, D/2, H/2, W/2]` (`[N, channels, 1, H/2,
    /// W/2]` for 2D passes) and read up-sampled ×2, nearest, onto the pass's grid.
    struct UpsampledPart {
        let base: UnsafePointer<Float>
        let channels: Int
        let extent: SpatialExtent

        /// Whether this part's up-sampling is exactly ×2 onto `plan`'s grid (every axis the
        /// kernel spans; a 2D pass keeps its depth), the case `transformUpsampledInput` handles.
        func fits(_ plan: Plan) -> Bool {
            let depthMatches = plan.kernelDepth == 3 ? 2 * extent.d == plan.depth : (plan.depth == 1 && extent.d == 1)
            return depthMatches && 2 * extent.h == plan.height && 2 * extent.w == plan.width
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
    /// 27 (9) nonzero points only. `staging`: 32 floats of scratch for rows near the grid's edge.
    @inline(__always)
    static func transformUpsampledInput(
        _ plan: Plan, segment: Segment, extent: SpatialExtent, channel: UnsafePointer<Float>,
        staging: UnsafeMutablePointer<Float>, into: UnsafeMutablePointer<Float>, pointStride: Int
    ) {
        let deep = plan.kernelDepth == 3
        let (depth, height, width) = (extent.d, extent.h, extent.w)
        let slices = deep ? 3 : 1
        // Along x, on the coarse rows (z − 1 … z + 1) × (y − 1 … y + 1) around the tiles:
        // r[(k·3 + l)·3 + a] is component a ∈ (0, 1, 3) → slot (0, 1, 2).
        var r = InlineArray<27, ConvVector>(repeating: ConvVector())
        for k in 0..<slices {
            let z = deep ? segment.tz - 1 + k : segment.tz
            for l in 0..<3 {
                let y = segment.ty - 1 + l
                guard z >= 0 && z < depth && y >= 0 && y < height else { continue }
                let (left, centre, right) = coarseRow(channel + (z * height + y) * width, x: segment.tx, width: width, staging: staging)
                let row = (k * 3 + l) * 3
                r[row] = left - centre
                r[row + 1] = centre + centre
                r[row + 2] = centre - right
            }
        }
        // Along y, then z: the same three-point rule on the components.
        @inline(__always) func butterfly(_ a: Int, _ b: Int, _ c: Int) {
            let (p, q, s) = (r[a], r[b], r[c])
            r[a] = p - q
            r[b] = q + q
            r[c] = q - s
        }
        for k in 0..<slices { for a in 0..<3 { butterfly((k * 3) * 3 + a, (k * 3 + 1) * 3 + a, (k * 3 + 2) * 3 + a) } }
        if deep { for la in 0..<9 { butterfly(la, 9 + la, 18 + la) } }
        // Slot i of an axis is transform index (0, 1, 3)[i].
        let out = into + segment.lane
        for k in 0..<slices {
            let iz = k == 2 ? 3 : k
            for l in 0..<3 {
                let iy = l == 2 ? 3 : l
                for a in 0..<3 {
                    let ix = a == 2 ? 3 : a
                    let xi = ((deep ? iz : 0) * 4 + iy) * 4 + ix
                    storeVector(r[(k * 3 + l) * 3 + a], out + xi * pointStride)
                }
            }
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
        for j in 0..<18 {
            let at = x - 1 + j
            staging[j] = at >= 0 && at < width ? row[at] : 0
        }
        return (loadVector(staging), loadVector(staging + 1), loadVector(staging + 2))
    }
}
