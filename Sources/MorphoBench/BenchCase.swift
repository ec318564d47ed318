/// One named benchmark: `make` allocates and fills the inputs (not timed) and returns the
/// closure that is timed. Names are `/`-separated paths whose first segment is the group
/// (`conv3d/16-16/64/fwd`), so `morphoseg bench conv3d` selects a group by prefix.
///
/// To add a group, write `Sources/MorphoBench/Cases/<Group>Cases.swift` with an
/// `extension BenchCase { static var <group>Cases: [BenchCase] }` and list it in
/// `BenchRegistry.all`.
public struct BenchCase: Sendable {
    public let name: String
    /// Floating-point operations of one call of the timed closure, when known; gives GFLOP/s
    /// and the share of the machine's FMA peak.
    public let flops: Double?
    /// The flops are counted instead, by running the timed closure once under
    /// `FLOPCounting.count` (untimed, as the first warm-up): the convolution layers report
    /// what they compute, forward and backward (convention on `FLOPCount`). For whole steps,
    /// whose arithmetic depends on the network and which inputs need gradients.
    public let countsFLOPs: Bool
    public let make: @Sendable () -> (() -> Void)

    public init(name: String, flops: Double? = nil, make: @escaping @Sendable () -> (() -> Void)) {
        self.name = name
        self.flops = flops
        countsFLOPs = false
        self.make = make
    }

    /// A case whose flops its convolution layers count (`countsFLOPs`).
    public init(name: String, countingFLOPs make: @escaping @Sendable () -> (() -> Void)) {
        self.name = name
        flops = nil
        countsFLOPs = true
        self.make = make
    }
}

/// A float32 buffer owned by a benchmark's timed closure: allocated by `make`, freed when the
/// closure is released after the case, so each case's peak RSS is its own.
public final class BenchBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// `count` floats, uniform in [−1, 1) from a fixed seed (SplitMix64).
    public init(random count: Int, seed: UInt64) {
        self.count = count
        pointer = .allocate(capacity: Swift.max(count, 1))
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        for i in 0..<count {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            pointer[i] = Float(Double(z >> 40) / Double(1 << 24) * 2 - 1)
        }
    }

    /// `count` zero floats.
    public init(zeros count: Int) {
        self.count = count
        pointer = .allocate(capacity: Swift.max(count, 1))
        pointer.initialize(repeating: 0, count: Swift.max(count, 1))
    }

    deinit { pointer.deallocate() }
}
