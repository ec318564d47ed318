import Foundation

/// One axis of a `ConvolutionPass`: which source voxels a grid position reads and which
/// destination voxel it writes.
///
/// Grid position `q` (0 ≤ q < `grid`) reads source voxels `q·stride + j − pad` for taps
/// 0 ≤ j < `taps` (zero outside `0..<source`) and writes destination voxel `q·step + origin`.
struct ConvolutionAxis {
    var source: Int
    var grid: Int
    var stride: Int
    var taps: Int
    var pad: Int
    var destination: Int
    var step: Int
    var origin: Int

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

/// The per-tile copy of the source that the microkernels read: for one tile (batch item `n`,
/// grid slice `qd`, grid rows `qh0 ..< qh0 + rows`) and every source channel and depth tap,
/// the source rows it needs, zero-padded, and split by stride phase along H and W:
///
///     slab[c][jd][row phase][column phase][row slot][column slot]
///
/// Row slot `i`, column slot `k` of phase `(ph, pw)` hold source voxel
/// `(y, x) = ((qh0 + i)·sH + ph − padH, k·sW + pw − padW)`. Then tap `(c, jd, jh, jw)` at
/// tile position `p = ql·pitch + qw` reads `slab[offset(c, jd, jh, jw) + p]`: one constant
/// offset per tap and unit steps between positions, whatever the stride. Positions with
/// `qw ≥ grid.w` (the last `pitch − grid.w` of each row) are computed and thrown away.
///
/// Size: `Csrc · Jd · sH · sW · (rows + (Jh−1)/sH) · pitch` floats, chosen per call to stay
/// near the L2 cache (`ConvolutionSlab.tileRows`), independent of the volume size.
struct ConvolutionSlab {
    /// Grid rows per tile.
    let rows: Int
    /// Column slots per row: grid.w + (Jw − 1) / sW.
    let pitch: Int
    /// Row slots per phase block: rows + (Jh − 1) / sH.
    let rowSlots: Int
    /// Floats per (channel, depth tap, row phase, column phase) block.
    let block: Int
    /// Floats per source channel.
    let channelStride: Int
    /// Tile positions `rows · pitch`.
    let positions: Int
    /// Positions rounded up to whole vectors, divided by 16.
    let vectors: Int
    /// Allocation size: every read of the microkernels stays below it.
    let floats: Int

    init(_ pass: ConvolutionPass, rows: Int) {
        self.rows = rows
        pitch = pass.w.grid + (pass.w.taps - 1) / pass.w.stride
        rowSlots = rows + (pass.h.taps - 1) / pass.h.stride
        block = rowSlots * pitch
        channelStride = pass.d.taps * pass.h.stride * pass.w.stride * block
        positions = rows * pitch
        vectors = (positions + 15) / 16
        // The farthest tap of the last channel plus a full vector sweep over the tile.
        var farthest = 0
        let c = pass.sourceChannels - 1
        for jd in 0..<pass.d.taps {
            for jh in 0..<pass.h.taps {
                for jw in 0..<pass.w.taps {
                    farthest = Swift.max(farthest, ConvolutionSlab.offset(c, jd, jh, jw, pass, pitch: pitch, block: block, channelStride: channelStride))
                }
            }
        }
        floats = Swift.max(pass.sourceChannels * channelStride, farthest + vectors * 16) + 16
    }

    private static func offset(_ c: Int, _ jd: Int, _ jh: Int, _ jw: Int, _ pass: ConvolutionPass,
                               pitch: Int, block: Int, channelStride: Int) -> Int {
        let phase = ((jd * pass.h.stride + jh % pass.h.stride) * pass.w.stride + jw % pass.w.stride)
        return c * channelStride + phase * block + (jh / pass.h.stride) * pitch + jw / pass.w.stride
    }

    /// Slab offset of every tap, in tap order `t = ((c·Jd + jd)·Jh + jh)·Jw + jw`.
    func tapOffsets(_ pass: ConvolutionPass) -> [Int] {
        var out = [Int]()
        out.reserveCapacity(pass.reduction)
        for c in 0..<pass.sourceChannels {
            for jd in 0..<pass.d.taps {
                for jh in 0..<pass.h.taps {
                    for jw in 0..<pass.w.taps {
                        out.append(ConvolutionSlab.offset(c, jd, jh, jw, pass, pitch: pitch, block: block, channelStride: channelStride))
                    }
                }
            }
        }
        return out
    }

    /// Grid rows per tile: as many as keep `bytesPerRow · rows + fixedBytes` within `budget`,
    /// at least 1, and few enough that the tiles spread over `Parallel.threads` workers.
    static func tileRows(_ pass: ConvolutionPass, extraBytesPerRow: Int, budget: Int = 768 * 1024) -> Int {
        let phases = pass.d.taps * pass.h.stride * pass.w.stride
        let pitch = pass.w.grid + (pass.w.taps - 1) / pass.w.stride
        let slabRow = pass.sourceChannels * phases * pitch * 4
        let fixed = slabRow * ((pass.h.taps - 1) / pass.h.stride)
        var rows = Swift.max(1, (budget - fixed) / Swift.max(1, slabRow + extraBytesPerRow))
        rows = Swift.min(rows, pass.h.grid)
        // Aim for at least 4 tiles per worker so a busy core does not hold the others up.
        let slices = pass.batch * pass.d.grid
        let wanted = 4 * Swift.max(1, Parallel.threads)
        if slices < wanted {
            let splits = (wanted + slices - 1) / slices
            rows = Swift.min(rows, Swift.max(1, (pass.h.grid + splits - 1) / splits))
        }
        return rows
    }

    /// Number of tiles of `rows` grid rows covering the pass.
    static func tileCount(_ pass: ConvolutionPass, rows: Int) -> Int {
        pass.batch * pass.d.grid * ((pass.h.grid + rows - 1) / rows)
    }

    /// The (n, qd, qh0) of tile `index`.
    static func tile(_ index: Int, _ pass: ConvolutionPass, rows: Int) -> (n: Int, qd: Int, qh0: Int) {
        let perSlice = (pass.h.grid + rows - 1) / rows
        let slice = index / perSlice
        return (slice / pass.d.grid, slice % pass.d.grid, (index % perSlice) * rows)
    }

    /// Copies the tile's source rows into `slab` (all `floats` stay as the layout says; the
    /// tail beyond `Csrc · channelStride` must have been zeroed once by the caller).
    /// `source` is batch item `n` of the pass's source, `[Csrc, D, H, W]`.
    func fill(_ pass: ConvolutionPass, source: UnsafePointer<Float>, qd: Int, qh0: Int,
              into slab: UnsafeMutablePointer<Float>) {
        let (sh, sw) = (pass.h.stride, pass.w.stride)
        let (srcH, srcW) = (pass.h.source, pass.w.source)
        let plane = srcH * srcW
        let volume = pass.d.source * plane
        for c in 0..<pass.sourceChannels {
            for jd in 0..<pass.d.taps {
                let z = qd * pass.d.stride + jd - pass.d.pad
                let zValid = z >= 0 && z < pass.d.source
                for ph in 0..<sh {
                    for pw in 0..<sw {
                        let blockBase = slab + c * channelStride + ((jd * sh + ph) * sw + pw) * block
                        // Column slots k with 0 ≤ k·sW + pw − padW < W.
                        let kLo = Swift.min(pitch, Swift.max(0, ceilDiv(pass.w.pad - pw, sw)))
                        let kHi = Swift.max(kLo, Swift.min(pitch, ceilDiv(srcW + pass.w.pad - pw, sw)))
                        for i in 0..<rowSlots {
                            let y = (qh0 + i) * sh + ph - pass.h.pad
                            let dst = blockBase + i * pitch
                            guard zValid && y >= 0 && y < srcH else {
                                dst.update(repeating: 0, count: pitch)
                                continue
                            }
                            let row = source + c * volume + z * plane + y * srcW
                            dst.update(repeating: 0, count: kLo)
                            if sw == 1 {
                                dst.advanced(by: kLo).update(from: row + (kLo + pw - pass.w.pad), count: kHi - kLo)
                            } else {
                                var x = kLo * sw + pw - pass.w.pad
                                for k in kLo..<kHi {
                                    dst[k] = row[x]
                                    x += sw
                                }
                            }
                            dst.advanced(by: kHi).update(repeating: 0, count: pitch - kHi)
                        }
                    }
                }
            }
        }
    }
}

@inline(__always)
func ceilDiv(_ a: Int, _ b: Int) -> Int {
    a >= 0 ? (a + b - 1) / b : -((-a) / b)
}

/// Hands out tile indices to the workers of one kernel call, first come first served, so a
/// worker sharing its core with another process does not hold the others up.
final class TileQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    let count: Int

    init(count: Int) { self.count = count }

    func claim() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard next < count else { return nil }
        next += 1
        return next - 1
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
