import Foundation
import MorphoKernels
import MorphoTensor

extension BenchCase {
    /// Signed distance maps (two exact EDTs, seed 004) and the spatial transformer, on the
    /// shapes of `../shared/bench/bench_torch.py`: `edt/signed/128|256` on its bumpy sphere,
    /// `warp/trilinear/SIZE/fwd|fwdbwd` (VoxelMorph's SpatialTransformer, 1×1×SIZE³ image,
    /// 3×SIZE³ smooth field, gradients to image and field), and `box/9/128` (one window-9
    /// box sum, the building block of local NCC), and `components/sphere|random/64|128|256`.
    static var kernelCases: [BenchCase] {
        var cases: [BenchCase] = []
        for n in [128, 256] {
            cases.append(BenchCase(name: "edt/signed/\(n)") {
                let mask = bumpySphere(n)
                var out = [Float](repeating: 0, count: mask.count)
                return {
                    mask.withUnsafeBufferPointer { m in
                        out.withUnsafeMutableBufferPointer { signedDistance(mask: m, shape: [n, n, n], into: $0) }
                    }
                }
            })
        }
        for (name, shape) in [("128", [128, 128, 128]), ("80x96x80", [80, 96, 80])] {
            cases.append(BenchCase(name: "warp/trilinear/\(name)/fwd") {
                let (image, flow) = warpInputs(shape, gradients: false)
                return { _ = withoutGradients { warp(image, flow) } }
            })
            cases.append(BenchCase(name: "warp/trilinear/\(name)/fwdbwd") {
                let (image, flow) = warpInputs(shape, gradients: true)
                return {
                    image.zeroGrad(); flow.zeroGrad()
                    warp(image, flow).sum().backward()
                }
            })
        }
        // Connected components (26-connectivity) of the bumpy sphere and of a random half-full
        // mask (many small components, the union-find's worst case here): time per voxel should
        // stay flat from 64³ to 256³.
        for n in [64, 128, 256] {
            cases.append(BenchCase(name: "components/sphere/\(n)") {
                let mask = bumpySphere(n)
                return { _ = ConnectedComponents(mask: mask, shape: [n, n, n], connectivity: .full) }
            })
            cases.append(BenchCase(name: "components/random/\(n)") {
                var rng = RandomGenerator(seed: 6)
                let mask = (0..<(n * n * n)).map { _ in rng.uniform() < 0.5 }
                return { _ = ConnectedComponents(mask: mask, shape: [n, n, n], connectivity: .full) }
            })
        }
        cases.append(BenchCase(name: "box/9/128") {
            var rng = RandomGenerator(seed: 5)
            let x = Tensor.randomNormal([1, 1, 128, 128, 128], using: &rng)
            return { _ = withoutGradients { x.boxSum(window: 9) } }
        })
        return cases
    }

    /// bench_torch.py's EDT mask: a sphere of radius 0.3·n with a bumpy surface.
    static func bumpySphere(_ n: Int) -> [Bool] {
        var mask = [Bool](repeating: false, count: n * n * n)
        for z in 0..<n { for y in 0..<n { for x in 0..<n {
            let gz = Float(z) / Float(n) - 0.5, gy = Float(y) / Float(n) - 0.5, gx = Float(x) / Float(n) - 0.5
            let bump = 0.05 * sin(12 * gz) * cos(9 * gy)
            mask[(z * n + y) * n + x] = (gz * gz + gy * gy + gx * gx).squareRoot() + bump < 0.3
        } } }
        return mask
    }

    /// A random image and a smooth field of a few voxels' amplitude, like bench_torch.py's pairs.
    static func warpInputs(_ shape: [Int], gradients: Bool) -> (Tensor, Tensor) {
        var rng = RandomGenerator(seed: 3)
        var image = Tensor.randomNormal([1, 1] + shape, using: &rng)
        let count = shape.reduce(1, *)
        var flow = Tensor(shape: [1, 3] + shape) { p in
            for c in 0..<3 {
                for v in 0..<count {
                    let z = v / (shape[1] * shape[2]), y = (v / shape[2]) % shape[1], x = v % shape[2]
                    p[c * count + v] = 3 * sin(Float(z + c) * 0.07) * cos(Float(y) * 0.05 + Float(x) * 0.03)
                }
            }
        }
        if gradients { image = image.requiringGrad(); flow = flow.requiringGrad() }
        return (image, flow)
    }
}
