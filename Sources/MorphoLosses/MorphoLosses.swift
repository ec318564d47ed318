import MorphoKernels
import MorphoTensor

// MorphoLosses: every loss of the seeds (../shared/seeds 000–004) on the autograd core, one
// file per family. Shapes follow MorphoTensor: images `[N, C, H, W]` / `[N, C, D, H, W]`, label
// maps of class indices stored as Float (`[N, H, W]`, `[N, D, H, W]` or with a channel of 1).
// Losses return 0-d tensors; differentiate them with `backward()`.

/// Errors raised while configuring losses (schedules and weighted combinations read from
/// training configs). Each case names the offending key.
public enum LossError: Error, CustomStringConvertible, Equatable {
    case unknownScheduleKind(key: String, value: String)
    case invalidParameter(key: String, reason: String)
    case duplicateTerm(name: String)

    public var description: String {
        switch self {
        case let .unknownScheduleKind(key, value):
            return "\(key): unknown schedule kind '\(value)' (expected constant, increase or rebalance)"
        case let .invalidParameter(key, reason):
            return "\(key): \(reason)"
        case let .duplicateTerm(name):
            return "loss term '\(name)' appears twice"
        }
    }
}

// MARK: - Internal helpers shared by the loss kernels

/// Runs `body(item, range, accumulators)` over blocks of the spatial voxels of every batch item in
/// parallel, each block with its own `width` Double accumulators (zeroed), and returns the sums
/// per item: `result[item · width + k]`. Accumulating each block separately and then in Double
/// keeps the sums as accurate as PyTorch's float64 references need (rtol 1e-3 on gradients that
/// are differences of sums).
func blockSums(
    items: Int, spatial: Int, width: Int, block: Int = 4096,
    _ body: (_ item: Int, _ range: Range<Int>, _ acc: UnsafeMutablePointer<Double>) -> Void
) -> [Double] {
    let blocks = max(1, (spatial + block - 1) / block)
    var partial = [Double](repeating: 0, count: items * blocks * width)
    partial.withUnsafeMutableBufferPointer { buf in
        let base = buf.baseAddress!
        Parallel.forEach(items * blocks) { t in
            let item = t / blocks, k = t % blocks
            let lo = k * block, hi = min(spatial, lo + block)
            if lo < hi { body(item, lo ..< hi, base + t * width) }
        }
    }
    var out = [Double](repeating: 0, count: items * width)
    for item in 0..<items {
        for b in 0..<blocks {
            for k in 0..<width { out[item * width + k] += partial[(item * blocks + b) * width + k] }
        }
    }
    return out
}

/// Runs `body(item, range)` over blocks of the spatial voxels of every batch item in parallel.
func forEachBlock(items: Int, spatial: Int, block: Int = 4096, _ body: (_ item: Int, _ range: Range<Int>) -> Void) {
    let blocks = max(1, (spatial + block - 1) / block)
    Parallel.forEach(items * blocks) { t in
        let item = t / blocks, k = t % blocks
        let lo = k * block, hi = min(spatial, lo + block)
        if lo < hi { body(item, lo ..< hi) }
    }
}

extension Tensor {
    /// Checks that this tensor is an image `[N, C, spatial...]` with 1–3 spatial axes.
    func preconditionImage(_ what: String, channels: Int? = nil) {
        precondition(rank >= 3 && rank <= 5, "\(what): expected [N, C, H, W] or [N, C, D, H, W], got \(shape)")
        if let channels {
            precondition(shape[1] == channels, "\(what): expected \(channels) channel(s), got \(shape)")
        }
    }
}

/// Checks that `labels` holds `items` label maps of `spatial` voxels (`[N, spatial...]` or
/// `[N, 1, spatial...]`) whose values are integral class indices in `0..<classes`.
func preconditionClassIndices(_ labels: Tensor, items: Int, spatial: Int, classes: Int, _ what: String) {
    precondition(labels.count == items * spatial,
                 "\(what): labels of shape \(labels.shape) do not match \(items) image(s) of \(spatial) voxels")
    let p = labels.storage.pointer
    let bad = blockSums(items: 1, spatial: labels.count, width: 1, block: 65536) { _, range, acc in
        var count = 0
        for v in range {
            let t = p[v]
            if !(t >= 0 && t < Float(classes) && t.rounded(.towardZero) == t) { count += 1 }
        }
        acc[0] = Double(count)
    }[0]
    precondition(bad == 0, "\(what): \(Int(bad)) label(s) are not class indices in 0..<\(classes)")
}

/// A label map of class indices for `items` images of `spatial` voxels: `[N, spatial...]` or
/// `[N, 1, spatial...]`, values integral in `0..<classes`. Returns the indices as `Int32`.
func classIndices(_ labels: Tensor, items: Int, spatial: Int, classes: Int, _ what: String) -> [Int32] {
    preconditionClassIndices(labels, items: items, spatial: spatial, classes: classes, what)
    return labels.withUnsafeBufferPointer { p in p.map { Int32($0) } }
}
