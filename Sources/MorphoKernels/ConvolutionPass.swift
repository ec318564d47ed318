import Foundation
import Synchronization

/// One axis of a `ConvolutionPass`: which source voxels a grid position reads and which
/// destination voxel it writes.
///
/// Grid position `q` (0 ≤ q < `grid`) reads, through tap 0 ≤ j < `taps`, the virtual source
/// voxel `u = q·stride + j − pad`, which is source voxel `u / dilation` when `dilation`
/// divides `u` and zero otherwise (and outside `0..<source`); it writes destination voxel
/// `q·step + origin`. Dilation > 1 (zeros inserted between source voxels, W axis only) is how
/// the data gradient of a strided convolution runs along W without splitting W by parity.
struct ConvolutionAxis {
    var source: Int
    var grid: Int
    var stride: Int
    var taps: Int
    var pad: Int
    var destination: Int
    var step: Int
    var origin: Int
    var dilation = 1

    /// The forward convolution along one axis: grid = output, written densely.
    static func forward(input: Int, output: Int, kernel: Int, stride: Int, padding: Int) -> ConvolutionAxis {
        ConvolutionAxis(source: input, grid: output, stride: stride, taps: kernel, pad: padding,
                        destination: output, step: 1, origin: 0)
    }
}

/// A direct convolution reduced to its common form: every kernel in `Convolution` (forward,
/// each stride phase of the data gradient, the weight gradient) is one or more passes.
///
/// `dst[n, c', q·step + origin] = Σ_{c, j} weight(c', c, j) · src[n, c, q·stride + j − pad]`
/// over source channels `c` and taps `j = (jd, jh, jw)`; `src` is `[N, Csrc, D, H, W]`, `dst`
/// is `[N, Cdst, D', H', W']`. Taps are numbered `t = ((c·Jd + jd)·Jh + jh)·Jw + jw`, which is
/// PyTorch's weight order within one output channel.
struct ConvolutionPass {
    var batch: Int
    var sourceChannels: Int
    var destinationChannels: Int
    var d: ConvolutionAxis
    var h: ConvolutionAxis
    var w: ConvolutionAxis

    var tapsPerChannel: Int { d.taps * h.taps * w.taps }
    /// Reduction length K = source channels × taps.
    var reduction: Int { sourceChannels * tapsPerChannel }
    var sourceVolume: Int { d.source * h.source * w.source }
    var gridVolume: Int { d.grid * h.grid * w.grid }
    var destinationVolume: Int { d.destination * h.destination * w.destination }
}

/// Passes that read one source through one slab: the stride phases of a strided convolution's
/// data gradient (each a stride-1 pass over the output gradient with its own sub-kernel,
/// writing every s-th destination voxel), or a single pass. The slab is laid out for the
/// `envelope`, which per axis reads the union of the source windows the phases read at a grid
/// position, so a worker copies each source row once per tile for all the phases instead of
/// once per phase (eight times for a 3D stride-2 data gradient).
///
/// Along an axis, phase tap `j` is envelope tap `j + shift` with `shift` = envelope pad − phase
/// pad: both read source voxel `q·stride + j − pad` of the phase. Phase grids may differ by one
/// (odd sizes); the envelope's is the largest, and a phase skips the grid positions past its own.
struct PolyphasePass {
    struct Phase {
        var pass: ConvolutionPass
        /// Envelope tap of the phase's tap 0, per axis.
        var shift: (d: Int, h: Int, w: Int)
    }

    let envelope: ConvolutionPass
    let phases: [Phase]

    /// One pass on its own.
    init(_ pass: ConvolutionPass) {
        envelope = pass
        phases = [Phase(pass: pass, shift: (0, 0, 0))]
    }

    /// Phases over the same source, batch and channels, with the same stride and dilation per axis.
    init(phases passes: [ConvolutionPass]) {
        precondition(!passes.isEmpty, "a polyphase pass needs a phase")
        let first = passes[0]
        precondition(passes.allSatisfy {
            $0.batch == first.batch && $0.sourceChannels == first.sourceChannels && $0.destinationChannels == first.destinationChannels
        }, "phases of one pass share the batch and the channels")
        func union(_ axes: [ConvolutionAxis]) -> ConvolutionAxis {
            var e = axes[0]
            precondition(axes.allSatisfy { $0.source == e.source && $0.stride == e.stride && $0.dilation == e.dilation },
                         "phases of one pass read the same source rows")
            e.pad = axes.map(\.pad).max()!
            e.taps = axes.map { $0.taps + e.pad - $0.pad }.max()!
            e.grid = axes.map(\.grid).max()!
            return e
        }
        let e = ConvolutionPass(batch: first.batch, sourceChannels: first.sourceChannels,
                                destinationChannels: first.destinationChannels,
                                d: union(passes.map(\.d)), h: union(passes.map(\.h)), w: union(passes.map(\.w)))
        envelope = e
        phases = passes.map { Phase(pass: $0, shift: (e.d.pad - $0.d.pad, e.h.pad - $0.h.pad, e.w.pad - $0.w.pad)) }
    }
}

/// The per-worker copy of the source that the microkernels read. For one tile (batch item
/// `n`, grid rows `qh0 ..< qh0 + rows`) it holds, for every source channel, `Jd` source slices
/// (a ring: slice `z` lives in depth slot `z mod Jd`, so stepping to the next output slice
/// loads only the `sD` new ones), each restricted to the rows the tile reads, zero-padded,
/// and split by stride phase along H and W:
///
///     slab[c][depth slot][row phase][column phase][row slot][column slot]
///
/// Row slot `i`, column slot `k` of phase `(ph, pw)` hold source voxel
/// `(y, x) = ((qh0 + i)·sH + ph − padH, k·sW + pw − padW)`. Then tap `(c, jd, jh, jw)` at
/// tile position `p = ql·pitch + qw` reads `slab[offset(c, jd, jh, jw) + p]`: one offset per
/// tap (a table per ring rotation) and unit steps between positions, whatever the stride.
///
/// Size: `Csrc · Jd · sH · sW · (rows + (Jh−1)/sH) · pitch` floats, chosen per call to stay
/// near the L2 cache (`ConvolutionTiling`), independent of the volume size.
struct ConvolutionSlab {
    /// Grid rows per tile.
    let rows: Int
    /// Column slots per row: at least grid.w + (Jw − 1) / sW.
    let pitch: Int
    /// Row slots per phase block: rows + (Jh − 1) / sH.
    let rowSlots: Int
    /// Floats per (channel, depth slot, row phase, column phase) block.
    let block: Int
    /// Floats per (channel, depth slot).
    let sliceStride: Int
    /// Floats per source channel.
    let channelStride: Int
    /// Tile positions `rows · pitch`.
    let positions: Int
    /// Positions rounded up to whole vectors, divided by 16.
    let vectors: Int
    /// Allocation size: every read of the microkernels stays below it.
    let floats: Int
    let depthSlots: Int

    init(_ pass: ConvolutionPass, rows: Int) {
        self.rows = rows
        pitch = pass.w.grid + (pass.w.taps - 1) / pass.w.stride
        rowSlots = rows + (pass.h.taps - 1) / pass.h.stride
        block = rowSlots * pitch
        depthSlots = pass.d.taps
        sliceStride = pass.h.stride * pass.w.stride * block
        channelStride = depthSlots * sliceStride
        positions = rows * pitch
        vectors = (positions + 15) / 16
        // The farthest block start plus the farthest in-block tap, plus a full sweep over the
        // tile rounded up to vectors (reads past the last position only feed discarded lanes).
        let farthest = pass.sourceChannels * channelStride - block
            + ((pass.h.taps - 1) / pass.h.stride) * pitch + (pass.w.taps - 1) / pass.w.stride
        floats = farthest + vectors * 16 + 16
    }

    /// Depth slot of source slice `z`.
    @inline(__always)
    func slot(_ z: Int) -> Int {
        let r = z % depthSlots
        return r < 0 ? r + depthSlots : r
    }

    /// `Jd` tables of `K` tap offsets, in tap order `t = ((c·Jd + jd)·Jh + jh)·Jw + jw`.
    /// Table `r` serves the output slices whose first source slice sits in slot `r`.
    /// `pass` is the slab's own, or a phase of a `PolyphasePass` whose envelope the slab is laid
    /// out for: its taps `(jd, jh, jw)` are the slab's `(jd, jh, jw) + shift`.
    /// (Computed on the calling thread before each kernel's parallel part: no allocation but the
    /// table's own.)
    func tapOffsets(_ pass: ConvolutionPass, shift: (d: Int, h: Int, w: Int) = (0, 0, 0)) -> [Int] {
        let (sh, sw) = (pass.h.stride, pass.w.stride)
        // The in-plane part of each tap (jh, jw), shared by every slot, channel and jd.
        let plane = pass.h.taps * pass.w.taps
        return [Int](unsafeUninitializedCapacity: depthSlots * pass.reduction) { out, initialized in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: plane) { inPlane in
                for jh in 0..<pass.h.taps {
                    for jw in 0..<pass.w.taps {
                        let (h, w) = (jh + shift.h, jw + shift.w)
                        inPlane[jh * pass.w.taps + jw] = ((h % sh) * sw + w % sw) * block + (h / sh) * pitch + w / sw
                    }
                }
                var k = 0
                for r in 0..<depthSlots {
                    for c in 0..<pass.sourceChannels {
                        for jd in 0..<pass.d.taps {
                            let slice = c * channelStride + ((r + jd + shift.d) % depthSlots) * sliceStride
                            for t in 0..<plane {
                                out[k] = slice + inPlane[t]
                                k += 1
                            }
                        }
                    }
                }
            }
            initialized = depthSlots * pass.reduction
        }
    }

    /// Offset table index for grid slice `qd`.
    @inline(__always)
    func table(forSlice qd: Int, _ pass: ConvolutionPass) -> Int {
        slot(qd * pass.d.stride - pass.d.pad)
    }

    /// Copies source slice `z` (zeros if outside the volume) of the tile's rows into depth slot
    /// `slot(z)` of every channel. `channels[c]` is channel `c` `[D, H, W]` of the tile's batch
    /// item (see `ConvolutionSource.channelBases`).
    ///
    /// The slab must have been zeroed once before the first fill (the drivers do, per worker and
    /// call): a row inside the volume writes only its column slots that hold source voxels (and,
    /// dilated, the zeros between them), so the zero padding columns are never rewritten. Rows
    /// outside the volume are zeroed whole.
    ///
    /// With `rectifier` (the bases of the rectified output `y`, its slope, and a scratch row of
    /// `pass.w.source` floats) each source row is first read as `row · (y > 0 ? 1 : slope)`.
    func fill(_ pass: ConvolutionPass, channels: UnsafePointer<UnsafePointer<Float>>, z: Int, qh0: Int,
              into slab: UnsafeMutablePointer<Float>,
              rectifier: (bases: UnsafePointer<UnsafePointer<Float>>, slope: Float, scratch: UnsafeMutablePointer<Float>)? = nil) {
        let (sh, sw) = (pass.h.stride, pass.w.stride)
        let (srcH, srcW) = (pass.h.source, pass.w.source)
        let plane = srcH &* srcW
        let zValid = z >= 0 && z < pass.d.source
        let slotBase = slot(z) &* sliceStride
        let dilation = pass.w.dilation
        // Dilated rows: voxels x with 0 ≤ x·dilation + pad < pitch.
        let xLo = dilation > 1 ? Swift.max(0, ceilDiv(-pass.w.pad, dilation)) : 0
        let xHi = dilation > 1 ? Swift.min(srcW, Swift.max(xLo, ceilDiv(pitch - pass.w.pad, dilation))) : 0
        for c in 0..<pass.sourceChannels {
            let channel = channels[c] + (zValid ? z &* plane : 0)
            for ph in 0..<sh {
                for pw in 0..<sw {
                    let blockBase = slab + (c &* channelStride &+ slotBase &+ (ph &* sw &+ pw) &* block)
                    // Column slots k with 0 ≤ k·sW + pw − padW < W (dilation 1), and the source
                    // column of slot kLo.
                    let kLo = Swift.min(pitch, Swift.max(0, ceilDiv(pass.w.pad - pw, sw)))
                    let kHi = Swift.max(kLo, Swift.min(pitch, ceilDiv(srcW + pass.w.pad - pw, sw)))
                    let first = kLo &* sw &+ pw &- pass.w.pad
                    let count = kHi &- kLo
                    for i in 0..<rowSlots {
                        let y = (qh0 &+ i) &* sh &+ ph &- pass.h.pad
                        let dst = blockBase + i &* pitch
                        guard zValid && y >= 0 && y < srcH else {
                            zeroFloats(dst, count: pitch)
                            continue
                        }
                        var row = channel + y &* srcW
                        if let rectifier {
                            let out = rectifier.bases[c] + (z &* plane &+ y &* srcW)
                            rectifyRow(row, sign: out, slope: rectifier.slope, count: srcW, into: rectifier.scratch)
                            row = UnsafePointer(rectifier.scratch)
                        }
                        if dilation > 1 {
                            dilateRow(row, from: xLo, to: xHi, dilation: dilation, offset: pass.w.pad, into: dst, pitch: pitch)
                        } else if sw == 1 {
                            copyFloats(row + first, to: dst + kLo, count: count)
                        } else {
                            gatherFloats(row + first, stride: sw, to: dst + kLo, count: count, available: srcW &- first, before: first)
                        }
                    }
                }
            }
        }
    }
}

/// The gradient arriving at a leaky-rectified convolution output `y = max(v, slope·v)` (slope
/// ≥ 0): `∂L/∂v = ∂L/∂y · (y > 0 ? 1 : slope)`. Handed to the backward kernels, the factor is
/// applied as they read `∂L/∂y`, so `∂L/∂v` is never stored (880 MB for 32 channels at
/// 160×192×224). `output` is `y`, laid out as the gradient. The differentiable `conv` no longer
/// takes this path: it keeps only y's sign (MorphoTensor's `RectifierMask`) and multiplies the
/// gradient it owns in place, with the same factor, so y need not outlive the next layer.
public struct Rectification {
    public var output: UnsafePointer<Float>
    public var slope: Float
    public init(output: UnsafePointer<Float>, slope: Float) {
        self.output = output
        self.slope = slope
    }

    /// `x · (y > 0 ? 1 : slope)`: with y the rectified output, the factor above applied to a
    /// gradient x; with y = x, the leaky rectifier itself. Lane by lane on vectors.
    @inline(__always)
    static func scaled(_ x: Float, sign y: Float, slope: Float) -> Float { y > 0 ? x : slope * x }

    @inline(__always)
    static func scaled(_ x: ConvVector, sign y: ConvVector, slope: Float) -> ConvVector {
        x.replacing(with: x * slope, where: .!(y .> 0))
    }
}

/// Where a convolution reads its input channels: one tensor `[N, C, D, H, W]`, or several
/// tensors `[N, C_k, D, H, W]` on the same grid taken as their concatenation along channels
/// (the input of a decoder convolution after a skip connection), so the concatenated tensor
/// and its gradient never have to exist. Pointers must outlive the call that reads them.
public struct ConvolutionSource {
    public struct Part {
        public var base: UnsafePointer<Float>
        public var channels: Int
        public init(_ base: UnsafePointer<Float>, channels: Int) {
            self.base = base
            self.channels = channels
        }
    }

    public let parts: [Part]
    /// Voxels per channel (D·H·W).
    public let volume: Int
    /// Channels of the concatenation.
    public let channels: Int
    /// When set, the kernels read `source · (y > 0 ? 1 : slope)` instead of `source` (one part only).
    public let rectifier: Rectification?

    public init(parts: [Part], volume: Int, rectifier: Rectification? = nil) {
        precondition(!parts.isEmpty && parts.allSatisfy { $0.channels > 0 }, "a convolution source needs parts with channels")
        precondition(rectifier == nil || parts.count == 1, "a rectified source has one part")
        self.parts = parts
        self.volume = volume
        self.rectifier = rectifier
        channels = parts.reduce(0) { $0 + $1.channels }
    }

    /// One contiguous `[N, channels, D, H, W]` tensor.
    public init(_ base: UnsafePointer<Float>, channels: Int, volume: Int, rectifier: Rectification? = nil) {
        self.init(parts: [Part(base, channels: channels)], volume: volume, rectifier: rectifier)
    }

    /// `channelBases` of the rectifier's output `y` (laid out as the source); nil without one.
    func rectifierBases(batchItem n: Int, into table: UnsafeMutablePointer<UnsafePointer<Float>>) {
        guard let rectifier else { return }
        let item = rectifier.output + n * channels * volume
        for c in 0..<channels { table[c] = item + c * volume }
    }

    /// Writes the start of channel `c` `[D, H, W]` of batch item `n` into `table[c]` for every c.
    func channelBases(batchItem n: Int, into table: UnsafeMutablePointer<UnsafePointer<Float>>) {
        var c = 0
        for part in parts {
            let item = part.base + n * part.channels * volume
            for k in 0..<part.channels {
                table[c] = item + k * volume
                c += 1
            }
        }
    }
}

/// How a pass is cut into tiles: (batch item, block of `rows` grid rows, run of `depth`
/// grid slices). A worker walks a tile's slices in order, reusing the slab ring.
struct ConvolutionTiling {
    let rows: Int
    let depth: Int
    let rowBlocks: Int
    let depthBlocks: Int
    var count: Int { batchCount * rowBlocks * depthBlocks }
    private let batchCount: Int
    private let gridH: Int
    private let gridD: Int

    /// Rows as many as keep the slab plus `extraBytesPerRow · rows` within `budget` (at least
    /// 1), then evened out; then the slices split so there are ≥ 4 tiles per worker.
    init(_ pass: ConvolutionPass, extraBytesPerRow: Int, budget: Int = 512 * 1024) {
        let phases = pass.d.taps * pass.h.stride * pass.w.stride
        let pitch = pass.w.grid + (pass.w.taps - 1) / pass.w.stride
        let slabRow = pass.sourceChannels * phases * pitch * 4
        let fixed = slabRow * ((pass.h.taps - 1) / pass.h.stride)
        var rows = Swift.max(1, (budget - fixed) / Swift.max(1, slabRow + extraBytesPerRow))
        rows = Swift.min(rows, pass.h.grid)
        var rowBlocks = (pass.h.grid + rows - 1) / rows
        rows = (pass.h.grid + rowBlocks - 1) / rowBlocks
        let wanted = 4 * Swift.max(1, Parallel.threads)
        var depthBlocks = Swift.min(pass.d.grid, Swift.max(1, (wanted + pass.batch * rowBlocks - 1) / (pass.batch * rowBlocks)))
        var depth = (pass.d.grid + depthBlocks - 1) / depthBlocks
        depthBlocks = (pass.d.grid + depth - 1) / depth
        // Too few slices (2D, or a thin volume): split the rows further instead.
        if pass.batch * rowBlocks * depthBlocks < wanted && rows > 1 {
            let splits = (wanted + pass.batch * depthBlocks - 1) / (pass.batch * depthBlocks)
            rowBlocks = Swift.min(pass.h.grid, Swift.max(rowBlocks, splits))
            rows = (pass.h.grid + rowBlocks - 1) / rowBlocks
            rowBlocks = (pass.h.grid + rows - 1) / rows
        }
        // Few tiles (a single 2D image: 9 of 29 rows for 16 channels at 256², 5 for 32 at 128²):
        // a count that is not a multiple of the workers leaves one core idle for the last tile
        // (5 tiles against 4 is 25 % more time than 4.5). Cut the rows a little finer instead.
        let workers = Swift.max(1, Parallel.threads)
        let others = pass.batch * depthBlocks
        if (others * rowBlocks) % workers != 0 && others * rowBlocks < 16 * workers {
            var wanted = rowBlocks
            while (others * wanted) % workers != 0 { wanted += 1 }
            let finer = (pass.h.grid + wanted - 1) / wanted
            if wanted <= pass.h.grid && (others * ((pass.h.grid + finer - 1) / finer)) % workers == 0 {
                rows = finer
                rowBlocks = (pass.h.grid + finer - 1) / finer
            }
        }
        depth = (pass.d.grid + depthBlocks - 1) / depthBlocks
        self.rows = rows
        self.depth = depth
        self.rowBlocks = rowBlocks
        self.depthBlocks = depthBlocks
        batchCount = pass.batch
        gridH = pass.h.grid
        gridD = pass.d.grid
    }

    /// Batch item, grid slices `qd0 ..< qd1` and first grid row of tile `index`.
    func tile(_ index: Int) -> (n: Int, qd0: Int, qd1: Int, qh0: Int) {
        let rb = index % rowBlocks
        let db = (index / rowBlocks) % depthBlocks
        let n = index / (rowBlocks * depthBlocks)
        let qd0 = db * depth
        return (n, qd0, Swift.min(gridD, qd0 + depth), rb * rows)
    }
}

/// `count` floats from `src` to `dst` (not overlapping), 16 at a time: rows are a few
/// hundred floats, too short for a `memmove` call to pay off. A partial last vector is the
/// last 16 (or 8) floats again, overlapping the previous store, when there are that many.
@inline(__always)
func copyFloats(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i &+ 16 <= count {
        storeVector(loadVector(src + i), dst + i)
        i &+= 16
    }
    if i == count { return }
    if count >= 16 {
        storeVector(loadVector(src + (count &- 16)), dst + (count &- 16))
        return
    }
    if count >= 8 {
        storeHalf(loadHalf(src), dst)
        storeHalf(loadHalf(src + (count &- 8)), dst + (count &- 8))
        return
    }
    while i < count {
        dst[i] = src[i]
        i &+= 1
    }
}

/// 8 floats from `p` (unaligned).
@inline(__always)
func loadHalf(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

/// Stores 8 floats at `p` (unaligned).
@inline(__always)
func storeHalf(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// `count` zeros from `dst`, 16 at a time.
@inline(__always)
func zeroFloats(_ dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i &+ 16 <= count {
        storeVector(ConvVector(), dst + i)
        i &+= 16
    }
    while i < count {
        dst[i] = 0
        i &+= 1
    }
}

/// `dst[i] = x[i] · (y[i] > 0 ? 1 : slope)` for `i < count` (see `Rectification`).
@inline(__always)
func rectifyRow(_ x: UnsafePointer<Float>, sign y: UnsafePointer<Float>, slope: Float, count: Int, into dst: UnsafeMutablePointer<Float>) {
    var i = 0
    while i &+ 16 <= count {
        storeVector(Rectification.scaled(loadVector(x + i), sign: loadVector(y + i), slope: slope), dst + i)
        i &+= 16
    }
    while i < count {
        dst[i] = Rectification.scaled(x[i], sign: y[i], slope: slope)
        i &+= 1
    }
}

/// `dst[i] = src[i·stride]` for `i < count`, reading only `src[-before ..< available]`
/// (`available` ≥ (count − 1)·stride + 1, `before` ≥ 0). Stride 2 (down-sampling layers) goes 16
/// (or 8) at a time: the even lanes of 32 (16) consecutive floats from `src + 2i`, or where those
/// run past `available`, the odd lanes of the 32 (16) from one float earlier. A partial last
/// block is the last 16 (8) again, overlapping the previous store.
@inline(__always)
func gatherFloats(_ src: UnsafePointer<Float>, stride: Int, to dst: UnsafeMutablePointer<Float>, count: Int, available: Int,
                  before: Int = 0) {
    var i = 0
    if stride == 2 {
        /// dst[j ..< j + 16] when one of the two loads stays in range.
        @inline(__always) func gather16(_ j: Int) -> Bool {
            if 2 &* j &+ 32 <= available {
                let from = src + 2 &* j
                storeVector(evenLanes(SIMD32<Float>(lowHalf: loadVector(from), highHalf: loadVector(from + 16))), dst + j)
                return true
            }
            if 2 &* j &- 1 >= -before {
                let from = src + (2 &* j &- 1)
                storeVector(oddLanes(SIMD32<Float>(lowHalf: loadVector(from), highHalf: loadVector(from + 16))), dst + j)
                return true
            }
            return false
        }
        /// dst[j ..< j + 8] likewise.
        @inline(__always) func gather8(_ j: Int) -> Bool {
            if 2 &* j &+ 16 <= available {
                storeHalf(evenHalfLanes(loadVector(src + 2 &* j)), dst + j)
                return true
            }
            if 2 &* j &- 1 >= -before {
                storeHalf(oddHalfLanes(loadVector(src + (2 &* j &- 1))), dst + j)
                return true
            }
            return false
        }
        while i &+ 16 <= count && gather16(i) { i &+= 16 }
        if i == count { return }
        if count &- i < 16 && count >= 16 && gather16(count &- 16) { return }
        while i &+ 8 <= count && gather8(i) { i &+= 8 }
        if i == count { return }
        if count &- i < 8 && count >= 8 && gather8(count &- 8) { return }
    }
    while i < count {
        dst[i] = src[i &* stride]
        i &+= 1
    }
}

/// The even lanes (0, 2, …, 14) and the odd lanes (1, 3, …, 15) of 16 floats (lane loops, which
/// the optimiser folds into permutes; see `evenLanes`).
@inline(__always)
func evenHalfLanes(_ v: ConvVector) -> SIMD8<Float> {
    var out = SIMD8<Float>()
    for i in 0..<8 { out[i] = v[2 * i] }
    return out
}

@inline(__always)
func oddHalfLanes(_ v: ConvVector) -> SIMD8<Float> {
    var out = SIMD8<Float>()
    for i in 0..<8 { out[i] = v[2 * i + 1] }
    return out
}

/// Source voxels `x` in `xLo ..< xHi` of a row, at `dst[x·dilation + offset]` (all inside
/// `0 ..< pitch`): the source row with dilation − 1 zeros between voxels. Slots that hold no
/// voxel must already be zero (see `ConvolutionSlab.fill`); they are left zero. Dilation 2 goes
/// 16 (then 8) voxels at a time: the voxels interleaved with as many zeros (the standard
/// library's `evenHalf` setter, a permute) stored as 32 (16) slots. (A zip through the
/// `evenHalf/oddHalf` getters was tried before: here the optimiser leaves `oddHalf` as a call.)
@inline(__always)
func dilateRow(_ src: UnsafePointer<Float>, from xLo: Int, to xHi: Int, dilation d: Int, offset: Int,
               into dst: UnsafeMutablePointer<Float>, pitch: Int) {
    var x = xLo
    if d == 2 {
        while x &+ 16 <= xHi && 2 &* x &+ offset &+ 32 <= pitch {
            var pair = SIMD32<Float>()
            pair.evenHalf = loadVector(src + x)
            let to = dst + (2 &* x &+ offset)
            storeVector(pair.lowHalf, to)
            storeVector(pair.highHalf, to + 16)
            x &+= 16
        }
        while x &+ 8 <= xHi && 2 &* x &+ offset &+ 16 <= pitch {
            var pair = ConvVector()
            pair.evenHalf = loadHalf(src + x)
            storeVector(pair, dst + (2 &* x &+ offset))
            x &+= 8
        }
    }
    while x < xHi {
        dst[x &* d &+ offset] = src[x]
        x &+= 1
    }
}

@inline(__always)
func ceilDiv(_ a: Int, _ b: Int) -> Int {
    a >= 0 ? (a + b - 1) / b : -((-a) / b)
}

/// Hands out tile indices to the workers of one kernel call, first come first served, so a
/// worker sharing its core with another process does not hold the others up.
final class TileQueue: Sendable {
    private let next = Atomic<Int>(0)
    let count: Int

    init(count: Int) { self.count = count }

    func claim() -> Int? {
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
        return index < count ? index : nil
    }
}

/// Raw float workspace, 64-byte aligned, freed by the owner.
@inline(__always)
func allocateFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(1, count) * 4, alignment: 64)
    return raw.bindMemory(to: Float.self, capacity: Swift.max(1, count))
}

@inline(__always)
func freeFloats(_ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).deallocate()
}
