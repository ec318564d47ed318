import MorphoKernels
import MorphoTensor

/// Mean squared intensity difference (seed 002, VoxelMorph `MSE`):
///
///     L = mean_v (I_v − J_v)²
///
/// - I, J: any shape with the same element count (images `[N, C, spatial...]`).
/// - Reduction: mean over all elements; differentiable in both.
public struct MeanSquaredError: Sendable {
    public init() {}

    public func callAsFunction(_ i: Tensor, _ j: Tensor) -> Tensor {
        precondition(i.count == j.count, "MeanSquaredError: \(i.shape) and \(j.shape) differ")
        let count = i.count
        let a = i.storage.pointer, b = j.storage.pointer
        let sums = blockSums(items: 1, spatial: count, width: 1, block: 16384) { _, range, acc in
            var s: Float = 0
            for v in range { let d = a[v] - b[v]; s += d * d }
            acc[0] = Double(s)
        }
        let value = Tensor(scalar: Float(sums[0] / Double(max(count, 1))))
        return Tensor.record(value, inputs: [i, j]) { g in
            let scale = 2 * g.item / Float(max(count, 1))
            let a = i.storage.pointer, b = j.storage.pointer
            let di = Tensor(shape: i.shape) { out in
                Parallel.forRanges(count) { r in for v in r { out[v] = scale * (a[v] - b[v]) } }
            }
            return [i.requiresGrad ? di : nil, j.requiresGrad ? (-di).reshaped(j.shape) : nil]
        }
    }
}
