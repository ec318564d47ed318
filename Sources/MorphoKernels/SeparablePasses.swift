// The schedule shared by the separable kernels (box sums, fixed-tap filters) on
// `[planes, D, H, W]`: one pass per axis, arranged so that only the D pass streams the whole
// volume and the W and H passes of each [H, W] slice stay in a per-thread scratch.

/// Runs a separable operator `src → dst` (no overlap):
/// 1. if `depthPass`, the D axis `src → dst` by `lines(src, dst, n: D, stride: H·W, width, axis: 0)`
///    on column chunks (1024 floats wide, parallel over planes × chunks);
/// 2. for every [H, W] slice (of `src`, or of `dst` after step 1): each row through
///    `row(src, dst, n: W, padded)` into scratch, then the H axis scratch → `dst` by
///    `lines(scratch, dst, n: H, stride: W, width: W, axis: 1)`.
/// `padded` is per-thread row scratch of `W + rowPadding` floats.
@inline(__always)
func runSeparablePasses(
    _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>,
    planes: Int, extent: SpatialExtent, depthPass: Bool, rowPadding: Int,
    lines: (_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ stride: Int, _ width: Int, _ axis: Int) -> Void,
    row: (_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ padded: UnsafeMutablePointer<Float>) -> Void
) {
    let (d, h, w) = (extent.d, extent.h, extent.w)
    let hw = h * w
    var sliceSource = src
    if depthPass {
        let chunk = 1024
        let chunksPerPlane = (hw + chunk - 1) / chunk
        Parallel.forEach(planes * chunksPerPlane) { item in
            let p = item / chunksPerPlane, c0 = (item % chunksPerPlane) * chunk
            let base = p * d * hw + c0
            lines(src + base, dst + base, d, hw, min(chunk, hw - c0), 0)
        }
        sliceSource = UnsafePointer(dst)
    }
    Parallel.forRanges(planes * d, grain: max(1, 16384 / hw)) { range in
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: hw + w + rowPadding)
        defer { scratch.deallocate() }
        let padded = scratch + hw
        for slice in range {
            let from = sliceSource + slice * hw
            for y in 0..<h { row(from + y * w, scratch + y * w, w, padded) }
            lines(scratch, dst + slice * hw, h, w, w, 1)
        }
    }
}
