import Foundation
import MorphoIO
import MorphoTensor

/// Whole-volume prediction from a network trained on patches: windows tile the volume with the
/// given overlap, each window's softmax probabilities are weighted (Gaussian, σ = window/8 per
/// axis as in nnU-Net; linear tent; or constant) and the weighted sum is divided by the summed
/// weights. 2D networks see every slice of the `[D, H, W]` layout as `[1, H, W]` windows.
public struct SlidingWindow: Sendable {
    /// Window size in the network's `[D, H, W]` layout (`D = 1` for 2D networks).
    public var window: [Int]
    public var overlap: Double
    public var blending: BlendingKind
    /// Windows per forward pass.
    public var batchSize: Int
    /// 2 or 3: shape of the tensors handed to the network.
    public var dims: Int

    public init(window: [Int], overlap: Double, blending: BlendingKind, batchSize: Int, dims: Int) {
        precondition(window.count == 3 && (dims == 3 || window[0] == 1), "window is [D, H, W], D = 1 in 2D")
        self.window = window
        self.overlap = overlap
        self.blending = blending
        self.batchSize = max(1, batchSize)
        self.dims = dims
    }

    /// The inference a run config implies for images of at most `shape` (`[D, H, W]`, network
    /// layout): the configured window, else the patch size, else whole slices of `shape`.
    public init(_ config: RunConfig, shape: [Int]) {
        let dims = config.model.unet.dims
        let w: [Int]
        if let s = config.inference.window ?? config.data.patch.size {
            w = AxisOrder.spatialSize(fromXYZ: s, dims: dims)
        } else {
            w = [1, shape[1], shape[2]]
        }
        self.init(window: w, overlap: config.inference.overlap, blending: config.inference.blending,
                  batchSize: config.inference.batchSize, dims: dims)
    }

    /// Window origins along one axis of length `n`: a regular step of `window·(1 − overlap)`, the
    /// last window flush with the end; one window (origin 0, overhanging) when `n ≤ window`.
    public func origins(length n: Int, window w: Int) -> [Int] {
        guard n > w else { return [0] }
        let step = max(1, Int((Double(w) * (1 - overlap)).rounded(.down)))
        var out: [Int] = []
        var o = 0
        while o + w < n { out.append(o); o += step }
        out.append(n - w)
        return out
    }

    /// Per-voxel weights of one window `[D, H, W]`.
    public func weights() -> [Float] {
        func axis(_ n: Int) -> [Float] {
            (0..<n).map { i in
                let t = (Double(i) + 0.5) / Double(n)  // (0, 1)
                switch blending {
                case .constant: return 1
                case .linear: return Float(max(1e-3, 1 - abs(2 * t - 1)))
                case .gaussian:
                    let sigma = Double(n) / 8, x = Double(i) - Double(n - 1) / 2
                    return Float(max(1e-3, exp(-x * x / (2 * sigma * sigma))))
                }
            }
        }
        let wz = axis(window[0]), wy = axis(window[1]), wx = axis(window[2])
        var out = [Float](repeating: 0, count: window.reduce(1, *))
        var i = 0
        for z in wz { for y in wy { for x in wx { out[i] = z * y * x; i += 1 } } }
        return out
    }

    /// Class probabilities `[K, D, H, W]` for `image` (`[C, D, H, W]`, network layout). Along an
    /// axis where the image is smaller than the window, the window shrinks to the image.
    ///
    /// - Parameters:
    ///   - fill: per-channel value for window parts beyond the image.
    ///   - network: logits `[N, K, …]` for a batch `[N, C, …]` of windows (called without
    ///     gradients).
    public func probabilities(
        _ image: VoxelArray, fill: [Float], network: (Tensor) -> Tensor
    ) -> VoxelArray {
        // A window larger than the image along an axis would only add padding: shrink it to the
        // image there (normalisation layers then see image, not fill).
        var fitted = self
        fitted.window = zip(window, image.shape).map { min($0, $1) }
        return fitted.tiled(image, fill: fill, network: network)
    }

    private func tiled(_ image: VoxelArray, fill: [Float], network: (Tensor) -> Tensor) -> VoxelArray {
        let shape = image.shape
        var starts: [[Int]] = []
        for z in (dims == 2 ? Array(0..<shape[0]) : origins(length: shape[0], window: window[0])) {
            for y in origins(length: shape[1], window: window[1]) {
                for x in origins(length: shape[2], window: window[2]) { starts.append([z, y, x]) }
            }
        }
        let weight = weights()
        let m = window.reduce(1, *)
        let n = image.spatialCount
        var classes = 0
        var sum: [Float] = []
        var norm = [Float](repeating: 0, count: n)
        let spatial = dims == 3 ? window : [window[1], window[2]]
        for batchStart in stride(from: 0, to: starts.count, by: batchSize) {
            let group = Array(starts[batchStart..<min(starts.count, batchStart + batchSize)])
            var input: [Float] = []
            input.reserveCapacity(group.count * image.channels * m)
            for o in group { input += image.cropped(origin: o, size: window, fill: fill).data }
            let probs = withoutGradients {
                network(Tensor(shape: [group.count, image.channels] + spatial, data: input)).softmax()
            }
            if classes == 0 {
                classes = probs.shape[1]
                sum = [Float](repeating: 0, count: classes * n)
            }
            probs.withUnsafePointer { p in
                for (g, o) in group.enumerated() {
                    accumulate(p + g * classes * m, origin: o, shape: shape, classes: classes, weight: weight, sum: &sum, norm: &norm)
                }
            }
        }
        for k in 0..<classes {
            for i in 0..<n where norm[i] > 0 { sum[k * n + i] /= norm[i] }
        }
        return VoxelArray(data: sum, channels: classes, shape: shape, spacing: image.spacing)
    }

    private func accumulate(
        _ p: UnsafePointer<Float>, origin o: [Int], shape: [Int], classes: Int, weight: [Float],
        sum: inout [Float], norm: inout [Float]
    ) {
        let m = window.reduce(1, *), n = shape.reduce(1, *)
        for z in 0..<window[0] {
            let gz = o[0] + z
            guard gz >= 0, gz < shape[0] else { continue }
            for y in 0..<window[1] {
                let gy = o[1] + y
                guard gy >= 0, gy < shape[1] else { continue }
                for x in 0..<window[2] {
                    let gx = o[2] + x
                    guard gx >= 0, gx < shape[2] else { continue }
                    let wi = (z * window[1] + y) * window[2] + x
                    let gi = (gz * shape[1] + gy) * shape[2] + gx
                    let w = weight[wi]
                    norm[gi] += w
                    for k in 0..<classes { sum[k * n + gi] += w * p[k * m + wi] }
                }
            }
        }
    }

    /// Most probable class per voxel, `[1, D, H, W]` (ties go to the lower class).
    public static func argmax(_ probabilities: VoxelArray) -> VoxelArray {
        let n = probabilities.spatialCount, k = probabilities.channels
        var out = [Float](repeating: 0, count: n)
        probabilities.data.withUnsafeBufferPointer { p in
            for i in 0..<n {
                var best = 0
                var bestValue = p[i]
                for c in 1..<max(k, 1) where p[c * n + i] > bestValue {
                    best = c
                    bestValue = p[c * n + i]
                }
                out[i] = Float(best)
            }
        }
        return VoxelArray(data: out, channels: 1, shape: probabilities.shape, spacing: probabilities.spacing)
    }
}
