import MorphoKernels
import MorphoTensor

// INTERIM, to be deleted when the `nn` branch lands its differentiable `warp` and `Adam`: the
// registration loop needs both now, so they are built here from the `kern` kernels.

enum InterimOps {
    /// Differentiable linear warp `out(p) = src(p + flow(p))` (VoxelMorph spatial transformer).
    static func warp(_ src: Tensor, _ flow: Tensor) -> Tensor {
        let extent = SpatialExtent(src.spatialShape)
        let (n, c) = (src.shape[0], src.shape[1])
        let out = Tensor(shape: src.shape) { o in
            warpLinear(src: src.storage.pointer, flow: flow.storage.pointer, into: o, batch: n, channels: c, extent: extent)
        }
        return Tensor.record(out, inputs: [src, flow]) { g in
            var srcGrad: Tensor? = src.requiresGrad ? Tensor.zeros(like: src) : nil
            var flowGrad: Tensor? = flow.requiresGrad ? Tensor.zeros(like: flow) : nil
            let sg = srcGrad?.withUnsafeMutablePointer { $0 }
            let fg = flowGrad?.withUnsafeMutablePointer { $0 }
            warpLinearBackward(src: src.storage.pointer, flow: flow.storage.pointer, cotangent: g.storage.pointer,
                               srcGrad: sg, flowGrad: fg, batch: n, channels: c, extent: extent)
            _ = (srcGrad, flowGrad)
            return [srcGrad, flowGrad]
        }
    }

    /// Differentiable box sum over a `window`^nd neighbourhood (zero padding); self-adjoint.
    static func boxSum(_ x: Tensor, window: Int) -> Tensor {
        let extent = SpatialExtent(x.spatialShape)
        let planes = x.shape[0] * x.shape[1]
        let out = Tensor(shape: x.shape) { o in
            MorphoKernels.boxSum(x.storage.pointer, into: o, planes: planes, extent: extent, window: window)
        }
        return Tensor.record(out, inputs: [x]) { g in [boxSum(g, window: window)] }
    }

    /// Seed 002 `LCC`: `1 − mean(cross² / (var_I · var_J + eps))` over `window`^nd boxes.
    static func lcc(_ i: Tensor, _ j: Tensor, window: Int, eps: Float = 1e-5) -> Tensor {
        let n = Float(pow(Double(window), Double(i.spatialRank)))
        let sumI = boxSum(i, window: window), sumJ = boxSum(j, window: window)
        let sumI2 = boxSum(i * i, window: window), sumJ2 = boxSum(j * j, window: window)
        let sumIJ = boxSum(i * j, window: window)
        let uI = sumI / n, uJ = sumJ / n
        let cross = sumIJ - uJ * sumI - uI * sumJ + uI * uJ * n
        let varI = sumI2 - uI * sumI * 2 + uI * uI * n
        let varJ = sumJ2 - uJ * sumJ * 2 + uJ * uJ * n
        let cc = cross * cross / (varI * varJ + eps)
        return 1 - cc.mean()
    }
}

/// Adam on a list of leaf tensors (PyTorch's update, no weight decay).
final class InterimAdam {
    var lr: Float
    let beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8
    var m: [Tensor] = [], v: [Tensor] = []
    var t = 0

    init(lr: Float) { self.lr = lr }

    func step(_ params: inout [Tensor]) {
        if m.isEmpty { m = params.map { Tensor.zeros(like: $0) }; v = params.map { Tensor.zeros(like: $0) } }
        t += 1
        let c1 = 1 - pow(beta1, Float(t)), c2 = 1 - pow(beta2, Float(t))
        for k in params.indices {
            guard let g = params[k].grad else { continue }
            let count = params[k].count
            let p = params[k].storage.pointer, gp = g.storage.pointer
            let mp = m[k].storage.pointer, vp = v[k].storage.pointer
            let (lr, b1, b2, eps) = (lr, beta1, beta2, eps)
            Parallel.forRanges(count) { r in
                for i in r {
                    mp[i] = b1 * mp[i] + (1 - b1) * gp[i]
                    vp[i] = b2 * vp[i] + (1 - b2) * gp[i] * gp[i]
                    p[i] -= lr * (mp[i] / c1) / ((vp[i] / c2).squareRoot() + eps)
                }
            }
            params[k].zeroGrad()
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
