import MorphoTensor

/// Independent random streams derived from a run seed and a few integers (phantom index, global
/// step, sample in the batch). A batch's randomness depends only on `(seed, step)`, not on which
/// loader thread makes it or how many threads there are, so a resumed run draws exactly the
/// batches a straight run would.
public enum SeedStream {
    /// SplitMix64 finaliser: a bijective mixer of 64-bit words.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A generator for the stream `(seed, path...)`.
    public static func generator(seed: UInt64, _ path: Int...) -> RandomGenerator {
        var h = mix(seed)
        for p in path { h = mix(h ^ UInt64(bitPattern: Int64(p))) }
        return RandomGenerator(seed: h)
    }
}

extension RandomGenerator {
    /// Uniform integer in `0..<n` (n > 0), by rejection (no modulo bias).
    mutating func index(_ n: Int) -> Int {
        precondition(n > 0, "random index of an empty range")
        return Int(UInt64.random(in: 0..<UInt64(n), using: &self))
    }

    /// Uniform in `[low, high)`.
    mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * uniformDouble() }
}
