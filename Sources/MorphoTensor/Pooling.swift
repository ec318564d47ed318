import MorphoKernels

// Differentiable max and average pooling over `[N, C, spatial...]` (2D or 3D), PyTorch's
// `max_pool*d` / `avg_pool*d` with padding 0 and floor sizing: out = ⌊(n − kernel)/stride⌋ + 1
// per axis, every axis at least `kernel` long. Voxels past the last full window are ignored
// (gradient 0).

private func pooledShape(_ x: Tensor, kernel: Int, stride: Int) -> (SpatialExtent, SpatialExtent, [Int]) {
    precondition(x.rank == 4 || x.rank == 5, "pooling expects [N, C, H, W] or [N, C, D, H, W], got \(x.shape)")
    let extent = SpatialExtent(x.spatialShape)
    let out = pooledExtent(extent, kernel: kernel, stride: stride)
    return (extent, out, Array(x.shape.prefix(2)) + out.dims)
}

/// The maximum over each `kernel`-wide window moved by `stride` (default: `kernel`). The
/// gradient goes to the first maximal voxel of each window, as in PyTorch.
public func maxPool(_ x: Tensor, kernel: Int = 2, stride: Int? = nil) -> Tensor {
    let stride = stride ?? kernel
    let (extent, out, shape) = pooledShape(x, kernel: kernel, stride: stride)
    let planes = x.shape[0] * x.shape[1]
    // The winners' positions are all the backward needs (4 bytes per output voxel).
    let winners = PoolWinners(count: planes * out.count)
    let argmax = winners.pointer
    let y = Tensor(shape: shape) { dst in
        MorphoKernels.maxPool(x.storage.pointer, into: dst, argmax: argmax, planes: planes, extent: extent, kernel: kernel, stride: stride)
    }
    // The backward captures x's shape, not x: the pooled tensor is not kept for it.
    let inputShape = x.shape
    return Tensor.record(y, inputs: [x]) { g in
        [Tensor(shape: inputShape) { dx in
            maxPoolBackward(g.storage.pointer, argmax: winners.pointer, into: dx, planes: planes, extent: extent, kernel: kernel, stride: stride)
        }]
    }
}

/// The argmax buffer of one max pooling, held by the backward closure: a pooled tensor buffer
/// (same 4 bytes per value) rebound to `Int32`, so repeated steps and inference calls reuse
/// mapped memory instead of faulting in a fresh allocation each time (55 MB for the first
/// pooling at 160×192×224 with 16 channels; 12 % of a full-resolution `register` call's time).
private final class PoolWinners {
    private let storage: TensorStorage
    let pointer: UnsafeMutablePointer<Int32>
    init(count: Int) {
        storage = TensorStorage(uninitializedCount: max(1, count))
        pointer = UnsafeMutableRawPointer(storage.pointer).bindMemory(to: Int32.self, capacity: max(1, count))
    }
}

/// The mean over each `kernel`-wide window moved by `stride` (default: `kernel`).
public func averagePool(_ x: Tensor, kernel: Int = 2, stride: Int? = nil) -> Tensor {
    let stride = stride ?? kernel
    let (extent, _, shape) = pooledShape(x, kernel: kernel, stride: stride)
    let planes = x.shape[0] * x.shape[1]
    let y = Tensor(shape: shape) { dst in
        MorphoKernels.averagePool(x.storage.pointer, into: dst, planes: planes, extent: extent, kernel: kernel, stride: stride)
    }
    let inputShape = x.shape
    return Tensor.record(y, inputs: [x]) { g in
        [Tensor(shape: inputShape) { dx in
            averagePoolBackward(g.storage.pointer, into: dx, planes: planes, extent: extent, kernel: kernel, stride: stride)
        }]
    }
}
