import MorphoTensor

/// nnU-Net's deep supervision (`model.unet.deep_supervision`): the regional loss is taken on
/// the U-Net's full-resolution logits and on its lower decoder heads (`UNet.deepSupervisionLogits`),
/// each against the labels subsampled to its grid, and summed with weights `1/2^i` normalised
/// to 1 (i = 0 the full resolution). nnU-Net also weights its deepest decoder output, with 0
/// (the network has no head there), so for L = `strides.count` levels the weights run over
/// i = 0…L−2.
public enum DeepSupervision {
    /// `1/2^i / Σ_j 1/2^j` for i in `0..<outputs`.
    public static func weights(outputs: Int) -> [Double] {
        let raw = (0..<outputs).map { 1 / Double(1 << $0) }
        let total = raw.reduce(0, +)
        return raw.map { $0 / total }
    }

    /// Class indices `[N, 1, spatial...]` at the grid of a level `factor` times coarser along
    /// every axis: voxel `j` takes the label at `factor · j`, the voxel a stride-`factor`
    /// convolution centres its output `j` on (nearest neighbour; no interpolation of classes).
    /// The result has ⌈n / factor⌉ voxels per axis, the U-Net's level size. No gradient.
    public static func subsampledLabels(_ labels: Tensor, factor: Int) -> Tensor {
        precondition(factor >= 1 && labels.rank >= 3, "labels [N, 1, spatial...] and a factor >= 1")
        if factor == 1 { return labels.detached() }
        let spatial = labels.spatialShape
        let coarse = spatial.map { ($0 + factor - 1) / factor }
        let outer = labels.shape[0] * labels.shape[1]
        var inStrides = Array(repeating: 1, count: spatial.count)
        for a in stride(from: spatial.count - 2, through: 0, by: -1) { inStrides[a] = inStrides[a + 1] * spatial[a + 1] }
        let inCount = spatial.reduce(1, *), outCount = coarse.reduce(1, *)
        let source = labels.scalars
        var out = [Float](repeating: 0, count: outer * outCount)
        var index = Array(repeating: 0, count: coarse.count)
        for o in 0..<outCount {
            var r = o, flat = 0
            for a in stride(from: coarse.count - 1, through: 0, by: -1) {
                index[a] = r % coarse[a]
                r /= coarse[a]
            }
            for a in 0..<coarse.count { flat += index[a] * factor * inStrides[a] }
            for n in 0..<outer { out[n * outCount + o] = source[n * inCount + flat] }
        }
        return Tensor(shape: Array(labels.shape.prefix(2)) + coarse, data: out)
    }

    /// The cumulative downsampling factor of each output of `deepSupervisionLogits`: 1, then
    /// `s₀`, `s₀·s₁`, … for `outputs` outputs.
    public static func factors(strides: [Int], outputs: Int) -> [Int] {
        (0..<outputs).map { i in strides.prefix(i).reduce(1, *) }
    }
}
