import Foundation

/// Seeded pseudo-random numbers (xoshiro256**, seeded through SplitMix64). Every random choice in
/// MorphoSeg — weight initialisation, patch sampling, augmentation, pair selection — draws from
/// one of these, so a run is reproducible from its seed and a resumed run continues the same
/// stream (`state` is saved in checkpoints).
public struct RandomGenerator: RandomNumberGenerator, Sendable, Equatable {
    public var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var z = seed
        func splitMix() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    /// Restores a generator saved with `stateWords`.
    public init(stateWords w: [UInt64]) {
        precondition(w.count == 4, "RandomGenerator state has 4 words")
        state = (w[0], w[1], w[2], w[3])
    }
    public var stateWords: [UInt64] { [state.0, state.1, state.2, state.3] }

    public static func == (a: Self, b: Self) -> Bool { a.stateWords == b.stateWords }

    @inlinable
    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = (state.3 << 45) | (state.3 >> 19)
        return result
    }

    /// Uniform in [0, 1).
    @inlinable
    public mutating func uniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [0, 1) with double precision.
    @inlinable
    public mutating func uniformDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal (Box–Muller; one value per call, the second is discarded for simplicity of state).
    public mutating func normal() -> Float {
        var u1 = uniformDouble()
        while u1 <= .leastNormalMagnitude { u1 = uniformDouble() }
        let u2 = uniformDouble()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// A new generator for a sub-stream (e.g. one per data-loading worker), derived deterministically.
    public mutating func split() -> RandomGenerator { RandomGenerator(seed: next()) }
}

