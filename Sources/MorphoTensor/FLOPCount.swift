import Foundation
import MorphoKernels

/// The arithmetic the convolutions of a computation perform, counted as they run: what
/// `bench` divides by a step's time to give its GFLOP/s and share of the machine's peak.
///
/// Convention (the direct-convolution count, as PyTorch's `FlopCounterMode` and the `conv3d`
/// bench rows): 2 FLOPs per multiply-add of the direct convolution, `ConvGeometry.flops` =
/// 2·N·Cin·Cout·k^d·(output voxels) per forward pass; a transposed convolution counts the
/// convolution it transposes (2·N·Cin·Cout·k^d·(its *input* voxels)). Each gradient pass that
/// runs counts the same again: the data gradient once per input part that needs a gradient
/// (its share Cₖ/Cin of the count), the weight gradient once when the weight or the bias needs
/// one. So a layer costs 3× its forward in a training step, 2× where its input needs no
/// gradient (the first layer, whose input is the image). Winograd layers do fewer
/// multiplications than they are counted for; their figure is the direct-equivalent one.
/// Not counted: bias additions, normalisation, activations, pooling, resampling, losses and
/// the optimiser, all O(voxels·channels) against the convolutions' O(voxels·channels²·k^d).
public final class FLOPCount: @unchecked Sendable {
    private let lock = NSLock()
    private var totals = (forward: 0.0, dataGradient: 0.0, weightGradient: 0.0)
    private var calls = 0

    public init() {}

    /// FLOPs of the forward convolutions (and transposed convolutions).
    public var forward: Double { lock.withLock { totals.forward } }
    /// FLOPs of the data-gradient passes.
    public var dataGradient: Double { lock.withLock { totals.dataGradient } }
    /// FLOPs of the weight-gradient passes.
    public var weightGradient: Double { lock.withLock { totals.weightGradient } }
    /// All counted FLOPs.
    public var total: Double { lock.withLock { totals.forward + totals.dataGradient + totals.weightGradient } }
    /// Forward convolution calls counted (one per layer application).
    public var forwardCalls: Int { lock.withLock { calls } }

    /// The passes of one layer whose arithmetic `bench` counts.
    public enum Pass { case forward, dataGradient, weightGradient }

    func add(_ pass: Pass, _ flops: Double) {
        lock.withLock {
            switch pass {
            case .forward: totals.forward += flops; calls += 1
            case .dataGradient: totals.dataGradient += flops
            case .weightGradient: totals.weightGradient += flops
            }
        }
    }
}

/// Where the convolution ops report their arithmetic: the `FLOPCount` of the innermost
/// `counting` scope, nil (nothing counted, one task-local read per layer) outside one.
public enum FLOPCounting {
    @TaskLocal static var current: FLOPCount?

    /// Runs `body` (forward and backward alike) and returns its result with the FLOPs its
    /// convolutions performed. A gradient pass counts where it runs: inside the scope of the
    /// `backward()` that runs it.
    public static func count<R>(_ body: () throws -> R) rethrows -> (result: R, flops: FLOPCount) {
        let tally = FLOPCount()
        let result = try $current.withValue(tally) { try body() }
        return (result, tally)
    }

    /// Adds `flops` of `pass` to the current scope's count, if any.
    @inline(__always)
    static func record(_ pass: FLOPCount.Pass, _ flops: Double) {
        current?.add(pass, flops)
    }
}
