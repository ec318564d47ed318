import MorphoTensor

// One-hot encodings of class-index label maps `[N, 1, spatial…]` (constants of the graph).

/// `[N, K, spatial…]` one-hot encoding (indices outside `0..<classes` give all zeros).
func oneHot(_ labels: Tensor, classes: Int) -> Tensor {
    oneHot(labels, channels: 0..<classes)
}

/// The foreground channels (classes 1..<K) of `oneHot(labels, classes: K)`: `[N, K − 1, spatial…]`.
func foregroundOneHot(_ labels: Tensor, classes: Int) -> Tensor {
    oneHot(labels, channels: 1..<classes)
}

/// `labels == c` as 0/1 floats, `[N, 1, spatial…]`.
func oneHot(_ labels: Tensor, class c: Int) -> Tensor {
    oneHot(labels, channels: c..<(c + 1))
}

/// Channels `channels` of the one-hot encoding: channel j is 1 where the label is
/// `channels.lowerBound + j`.
private func oneHot(_ labels: Tensor, channels: Range<Int>) -> Tensor {
    let n = labels.shape[0], s = labels.spatialCount, k = channels.count
    return Tensor(shape: [n, k] + labels.spatialShape) { out in
        out.update(repeating: 0, count: n * k * s)
        labels.withUnsafePointer { l in
            for b in 0..<n {
                for v in 0..<s {
                    let c = Int(l[b * s + v].rounded()) - channels.lowerBound
                    if c >= 0 && c < k { out[(b * k + c) * s + v] = 1 }
                }
            }
        }
    }
}
