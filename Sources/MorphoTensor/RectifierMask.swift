import MorphoKernels

/// What the backward of a leaky rectifier `y = v > 0 ? v : s·v` (slope s ≥ 0) needs from its
/// output: which values are positive, one bit per value (1/32 of the output's bytes).
///
/// A convolution with a fused rectifier keeps this instead of its output `y`, so `y` lives only
/// as long as the next layer needs it (for that layer's weight gradient) instead of until this
/// layer's own backward — at 160×192×224, 440 MB per 16 channels against a 14 MB mask. The
/// backward multiplies the arriving gradient by the derivative before the kernels read it:
///
///     ∂L/∂v[i] = bit[i] ? ∂L/∂y[i] : s · ∂L/∂y[i]          (bit[i] = y[i] > 0)
///
/// the same values `Rectification.scaled` gives reading `y` itself (a NaN output counts as not
/// positive in both). Bit i is bit `i % 32` of word `i / 32`; the words live in a pooled
/// `TensorStorage`, so they count towards `StoragePool.liveBytes`.
public final class RectifierMask: @unchecked Sendable {
    /// Values covered (the rectified output's element count).
    public let count: Int
    /// The rectifier's slope s for non-positive values.
    public let slope: Float
    private let words: TensorStorage

    /// The mask of `output` (`count` values of a rectified tensor, any layout: the gradient is
    /// read in the same layout).
    public init(output: UnsafePointer<Float>, count: Int, slope: Float) {
        precondition(slope >= 0, "a rectifier mask has slope >= 0, got \(slope)")
        self.count = count
        self.slope = slope
        let wordCount = (count + 31) / 32
        words = TensorStorage(uninitializedCount: max(wordCount, 1))
        let bits = UnsafeMutableRawPointer(words.pointer).bindMemory(to: UInt32.self, capacity: max(wordCount, 1))
        Parallel.forRanges(wordCount, grain: 4096) { range in
            for w in range {
                let base = w * 32
                if base + 32 <= count {
                    let low = positiveBits(loadLanes(output + base)), high = positiveBits(loadLanes(output + base + 16))
                    bits[w] = UInt32(low) | UInt32(high) << 16
                } else {
                    var word: UInt32 = 0
                    for i in base..<count where output[i] > 0 { word |= 1 << UInt32(i - base) }
                    bits[w] = word
                }
            }
        }
    }

    /// `gradient[i] = bit[i] ? gradient[i] : slope · gradient[i]` for the `count` values, in place.
    public func rectify(_ gradient: UnsafeMutablePointer<Float>) {
        rectify(UnsafePointer(gradient), into: gradient)
    }

    /// `destination[i] = bit[i] ? source[i] : slope · source[i]`; `destination` may be `source`.
    public func rectify(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>) {
        let count = self.count, slope = self.slope
        let bits = UnsafeRawPointer(words.pointer).bindMemory(to: UInt32.self, capacity: max((count + 31) / 32, 1))
        Parallel.forRanges((count + 31) / 32, grain: 4096) { range in
            for w in range {
                let base = w * 32, word = bits[w]
                if base + 32 <= count {
                    for half in 0..<2 {
                        let at = base + 16 * half
                        let x = loadLanes(source + at)
                        storeLanes(x.replacing(with: x * slope, where: .!isSet(UInt16(truncatingIfNeeded: word >> UInt32(16 * half)))),
                                   destination + at)
                    }
                } else {
                    for i in base..<count {
                        let x = source[i]
                        destination[i] = word & (1 << UInt32(i - base)) != 0 ? x : slope * x
                    }
                }
            }
        }
    }

    /// Whether each value was positive (tests).
    public var positives: [Bool] {
        let bits = UnsafeRawPointer(words.pointer).bindMemory(to: UInt32.self, capacity: max((count + 31) / 32, 1))
        return (0..<count).map { bits[$0 / 32] & (1 << UInt32($0 % 32)) != 0 }
    }
}

/// The 16 lane positions as bits, lane k ↦ 1 << k.
@inline(__always) private var laneBits: SIMD16<UInt32> {
    SIMD16<UInt32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
}

/// Bit k set where lane k of `x` is > 0 (false for NaN, as `Rectification.scaled`).
@inline(__always) private func positiveBits(_ x: Lanes) -> UInt16 {
    UInt16(truncatingIfNeeded: SIMD16<UInt32>(repeating: 0).replacing(with: laneBits, where: x .> 0).wrappedSum())
}

/// Lane k set where bit k of `bits` is.
@inline(__always) private func isSet(_ bits: UInt16) -> LaneMask {
    (SIMD16<UInt32>(repeating: UInt32(bits)) & laneBits) .!= SIMD16<UInt32>(repeating: 0)
}
