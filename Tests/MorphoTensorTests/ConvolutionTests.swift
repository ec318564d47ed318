import XCTest
import MorphoTestSupport
@testable import MorphoTensor

final class ConvolutionTests: XCTestCase {
    var rng = RandomGenerator(seed: 31)

    func random(_ shape: [Int]) -> Tensor { Tensor.randomUniform(shape, low: -1, high: 1, using: &rng) }

    /// PyTorch's definition in Double, as 3D with D = 1 for 2D: out[n, co, o] = b[co] +
    /// Σ_{ci, k} w[co, ci, k]·x[n, ci, o·s + k − p].
    func naiveConv(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride s: Int, padding p: Int) -> [Double] {
        let is2D = x.rank == 4
        let (n, ci) = (x.shape[0], x.shape[1]), co = w.shape[0]
        let sp: [Int] = is2D ? [1] + x.spatialShape : x.spatialShape
        let k: [Int] = is2D ? [1] + Array(w.shape.dropFirst(2)) : Array(w.shape.dropFirst(2))
        let pd: [Int] = is2D ? [0, p, p] : [p, p, p]
        let st: [Int] = is2D ? [1, s, s] : [s, s, s]
        var o: [Int] = []
        for a in 0..<3 { o.append((sp[a] + 2 * pd[a] - k[a]) / st[a] + 1) }
        var out = [Double](repeating: 0, count: n * co * o[0] * o[1] * o[2])
        for b0 in 0..<n { for c in 0..<co { for z in 0..<o[0] { for y in 0..<o[1] { for xx in 0..<o[2] {
            var acc = Double(b?[flat: c] ?? 0)
            for c2 in 0..<ci { for kz in 0..<k[0] { for ky in 0..<k[1] { for kx in 0..<k[2] {
                let iz: Int = z * st[0] + kz - pd[0]
                let iy: Int = y * st[1] + ky - pd[1]
                let ix: Int = xx * st[2] + kx - pd[2]
                guard iz >= 0, iz < sp[0], iy >= 0, iy < sp[1], ix >= 0, ix < sp[2] else { continue }
                let plane: Int = (b0 * ci + c2) * sp[0] + iz
                let xi: Int = (plane * sp[1] + iy) * sp[2] + ix
                let tap: Int = (c * ci + c2) * k[0] + kz
                let wi: Int = (tap * k[1] + ky) * k[2] + kx
                acc += Double(x[flat: xi]) * Double(w[flat: wi])
            } } } }
            let oi: Int = ((b0 * co + c) * o[0] + z) * o[1] + y
            out[oi * o[2] + xx] = acc
        } } } } }
        return out
    }

    /// PyTorch's transposed convolution in Double, as a scatter: x[n, ci, i] adds
    /// w[ci, co, k]·x to out[n, co, i·s + k − p] (then cropped to the output size).
    func naiveConvTransposed(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride s: Int, padding p: Int, outputPadding op: Int) -> ([Int], [Double]) {
        let nd = x.rank - 2
        let (n, ci, co) = (x.shape[0], x.shape[1], w.shape[1])
        let k = Array(w.shape.dropFirst(2))
        let inSp = x.spatialShape
        let outSp = (0..<nd).map { (inSp[$0] - 1) * s - 2 * p + k[$0] + op }
        let outCount = outSp.reduce(1, *), inCount = inSp.reduce(1, *), kCount = k.reduce(1, *)
        var out = [Double](repeating: 0, count: n * co * outCount)
        func coords(_ i: Int, _ dims: [Int]) -> [Int] {
            var r = i, c = [Int](repeating: 0, count: dims.count)
            for a in stride(from: dims.count - 1, through: 0, by: -1) { c[a] = r % dims[a]; r /= dims[a] }
            return c
        }
        for b0 in 0..<n { for c in 0..<co {
            for v in 0..<outCount { out[(b0 * co + c) * outCount + v] = Double(b?[flat: c] ?? 0) }
            for c2 in 0..<ci { for i in 0..<inCount { for t in 0..<kCount {
                let ic = coords(i, inSp), kc = coords(t, k)
                let oc: [Int] = (0..<nd).map { (a: Int) -> Int in ic[a] * s + kc[a] - p }
                guard (0..<nd).allSatisfy({ oc[$0] >= 0 && oc[$0] < outSp[$0] }) else { continue }
                var ov = 0
                for a in 0..<nd { ov = ov * outSp[a] + oc[a] }
                let xv = Double(x[flat: (b0 * ci + c2) * inCount + i]), wv = Double(w[flat: (c2 * co + c) * kCount + t])
                out[(b0 * co + c) * outCount + ov] += xv * wv
            } } }
        } }
        return (outSp, out)
    }

    func assertClose(_ t: Tensor, _ reference: [Double], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(t.count, reference.count, file: file, line: line)
        var worst = 0.0
        for i in 0..<min(t.count, reference.count) { worst = nanStrictMax(worst, Swift.abs(Double(t[flat: i]) - reference[i])) }
        XCTAssertLessThan(worst, 1e-4, file: file, line: line)
    }

    func testConvMatchesTheDirectSum2DAnd3DWithStrideAndPadding() {
        for (shape, k, s, p) in [([2, 3, 7, 6], 3, 1, 1), ([1, 2, 9, 8], 3, 2, 1), ([1, 2, 5, 5], 1, 1, 0),
                                 ([1, 2, 5, 6, 7], 3, 1, 1), ([2, 3, 7, 5, 6], 3, 2, 1), ([1, 2, 4, 6, 5], 2, 2, 0)] {
            let x = random(shape)
            let w = random([4, shape[1]] + Array(repeating: k, count: shape.count - 2)), b = random([4])
            let y = conv(x, w, b, stride: s, padding: p)
            assertClose(y, naiveConv(x, w, b, stride: s, padding: p))
        }
    }

    func testConvGradients2DAnd3D() {
        for (shape, k, s, p) in [([2, 2, 5, 6], 3, 1, 1), ([1, 2, 7, 7], 3, 2, 1), ([1, 2, 4, 5, 3], 3, 1, 1), ([1, 2, 5, 6, 7], 3, 2, 1)] {
            let x = random(shape), w = random([3, 2] + Array(repeating: k, count: shape.count - 2)), b = random([3])
            assertGradientMatchesFiniteDifferences([x, w, b]) { conv($0[0], $0[1], $0[2], stride: s, padding: p) }
            assertGradientMatchesFiniteDifferences([x, w]) { conv($0[0], $0[1], stride: s, padding: p) }
        }
    }

    func testTransposedConvMatchesTheScatterDefinition() {
        for (shape, k, s, p, op) in [([1, 3, 4, 5], 2, 2, 0, 0), ([2, 2, 3, 4], 3, 2, 1, 1), ([1, 2, 3, 4, 3], 2, 2, 0, 0),
                                     ([1, 3, 3, 2, 4], 3, 2, 1, 1), ([1, 2, 4, 3, 3], 3, 1, 1, 0)] {
            let x = random(shape), w = random([shape[1], 3] + Array(repeating: k, count: shape.count - 2)), b = random([3])
            let y = convTransposed(x, w, b, stride: s, padding: p, outputPadding: op)
            let (size, reference) = naiveConvTransposed(x, w, b, stride: s, padding: p, outputPadding: op)
            XCTAssertEqual(y.spatialShape, size)
            assertClose(y, reference)
        }
    }

    func testTransposedConvToAnOddSkipSize() {
        // k3 s2 p1 maps 4 → 8 with outputPadding 1 and 4 → 7 without; outputSize picks per axis.
        let x = random([1, 2, 4, 4, 4]), w = random([2, 1, 3, 3, 3])
        let y = convTransposed(x, w, stride: 2, padding: 1, outputSize: [7, 8, 7])
        XCTAssertEqual(y.shape, [1, 1, 7, 8, 7])
        let full = convTransposed(x, w, stride: 2, padding: 1, outputPadding: 1)
        // The shorter output is the longer one without its last row along the short axes.
        for z in 0..<7 { for yy in 0..<8 { for xx in 0..<7 {
            XCTAssertEqual(y[flat: (z * 8 + yy) * 7 + xx], full[flat: (z * 8 + yy) * 8 + xx], accuracy: 1e-5)
        } } }
    }

    func testTransposedConvGradients2DAnd3D() {
        for (shape, k, s, p, op) in [([2, 2, 3, 4], 2, 2, 0, 0), ([1, 2, 3, 3], 3, 2, 1, 1), ([1, 2, 2, 3, 2], 3, 2, 1, 1), ([1, 3, 2, 2, 3], 2, 2, 0, 0)] {
            let x = random(shape), w = random([shape[1], 2] + Array(repeating: k, count: shape.count - 2)), b = random([2])
            assertGradientMatchesFiniteDifferences([x, w, b]) { convTransposed($0[0], $0[1], $0[2], stride: s, padding: p, outputPadding: op) }
        }
    }
}

final class FusedConvolutionTests: XCTestCase {
    func testFusedLeakyRectifierEqualsConvThenLeakyRelu() {
        var rng = RandomGenerator(seed: 33)
        let x = Tensor.randomUniform([1, 2, 5, 6, 4], low: -1, high: 1, using: &rng)
        let w = Tensor.randomUniform([3, 2, 3, 3, 3], low: -1, high: 1, using: &rng), b = Tensor.randomUniform([3], using: &rng)
        for slope: Float in [0, 0.2] {
            XCTAssertEqual(conv(x, w, b, padding: 1, activation: .leaky(slope)).scalars, conv(x, w, b, padding: 1).leakyRelu(slope).scalars)
            // Outputs near the kink are rare for random data; a small step keeps them on one side.
            assertGradientMatchesFiniteDifferences([x, w, b], h: 1e-3, rtol: 3e-2) {
                conv($0[0], $0[1], $0[2], padding: 1, activation: .leaky(slope))
            }
        }
    }
}

final class RectifiedBackwardTests: XCTestCase {
    func testFusedRectifierGradientsEqualConvThenLeakyReluGradients() {
        var rng = RandomGenerator(seed: 37)
        // The last two: 16 × 16 blocks of the weight gradient's transpose (≥ 16 output channels,
        // rows ≥ 16 wide) beside scalar tails in both directions, where the rectifier is applied
        // to whole vectors as the rows are read.
        for (shape, stride, slope, outputs) in [([2, 3, 6, 5, 7], 1, Float(0.2), 5), ([1, 3, 7, 6, 5], 2, Float(0.2), 5),
                                                ([2, 2, 9, 8], 1, Float(0), 5), ([1, 2, 9, 10], 2, Float(0.1), 5),
                                                ([1, 3, 3, 4, 35], 1, Float(0.2), 18), ([2, 2, 5, 33], 1, Float(0.1), 17)] {
            let nd = shape.count - 2
            let x = Tensor.randomUniform(shape, low: -1, high: 1, using: &rng)
            let w = Tensor.randomUniform([outputs, shape[1]] + Array(repeating: 3, count: nd), low: -1, high: 1, using: &rng)
            let b = Tensor.randomUniform([outputs], low: -1, high: 1, using: &rng)
            func grads(fused: Bool) -> [[Float]] {
                let (xl, wl, bl) = (x.requiringGrad(), w.requiringGrad(), b.requiringGrad())
                let y = fused ? conv(xl, wl, bl, stride: stride, padding: 1, activation: .leaky(slope))
                    : conv(xl, wl, bl, stride: stride, padding: 1).leakyRelu(slope)
                let r = Tensor(shape: y.shape) { p in for i in 0..<y.count { p[i] = Float(i % 7) - 3 } }
                (y * r).sum().backward()
                return [xl.grad!.scalars, wl.grad!.scalars, bl.grad!.scalars]
            }
            // Bit for bit: the fused backward multiplies the gradient by the same factor
            // (1 or the slope) before the same kernels read it.
            for (a, c) in zip(grads(fused: true), grads(fused: false)) {
                XCTAssertEqual(a.map(\.bitPattern), c.map(\.bitPattern), "\(shape) stride \(stride)")
            }
        }
    }
}

final class ConvolutionOverPartsTests: XCTestCase {
    var rng = RandomGenerator(seed: 35)

    func random(_ shape: [Int]) -> Tensor { Tensor.randomUniform(shape, low: -1, high: 1, using: &rng) }

    /// Gradients of `loss(y) = Σ y·r` for a fixed random `r`, through `build`.
    func gradients(_ inputs: [Tensor], weight: Tensor, r: Tensor, _ build: ([Tensor]) -> Tensor) -> [[Float]] {
        let leaves = inputs.map { $0.requiringGrad() } + [weight.requiringGrad()]
        (build(leaves) * r).sum().backward()
        return leaves.map { $0.grad!.scalars }
    }

    func testConvOverPartsEqualsConvOfTheirConcatenationWithItsGradients() {
        // Channel splits that straddle the kernels' 8-channel blocks (1 + 1, 3 + 6 + 2), batch 2,
        // 2D and 3D, stride 1 and 2, with the fused rectifier.
        for (split, spatial, stride) in [([1, 1], [5, 6, 4], 1), ([3, 6, 2], [6, 5], 2), ([3, 6, 2], [4, 5, 6], 2)] {
            let parts = split.map { random([2, $0] + spatial) }
            let w = random([10, split.reduce(0, +)] + Array(repeating: 3, count: spatial.count)), b = random([10])
            let viaParts = conv(parts: parts, w, b, stride: stride, padding: 1, activation: .leaky(0.2))
            let viaConcat = conv(Tensor.concat(parts, axis: 1), w, b, stride: stride, padding: 1, activation: .leaky(0.2))
            XCTAssertEqual(viaParts.shape, viaConcat.shape)
            XCTAssertEqual(viaParts.scalars, viaConcat.scalars, "the kernels read the same values in the same order")
            let r = random(viaParts.shape)
            let gParts = gradients(parts, weight: w, r: r) { conv(parts: Array($0.dropLast()), $0.last!, b, stride: stride, padding: 1, activation: .leaky(0.2)) }
            let gConcat = gradients(parts, weight: w, r: r) {
                conv(Tensor.concat(Array($0.dropLast()), axis: 1), $0.last!, b, stride: stride, padding: 1, activation: .leaky(0.2))
            }
            for (a, c) in zip(gParts, gConcat) {
                XCTAssertEqual(a.count, c.count)
                for (u, v) in zip(a, c) { XCTAssertEqual(u, v, accuracy: 1e-5 * max(1, abs(v))) }
            }
        }
    }

    func testConvOverPartsGradientsMatchFiniteDifferences() {
        let parts = [random([1, 2, 4, 5, 3]), random([1, 3, 4, 5, 3])]
        let w = random([4, 5, 3, 3, 3]), b = random([4])
        assertGradientMatchesFiniteDifferences(parts + [w, b]) { conv(parts: [$0[0], $0[1]], $0[2], $0[3], padding: 1) }
        assertGradientMatchesFiniteDifferences(parts + [w]) { conv(parts: [$0[0], $0[1]], $0[2], stride: 2, padding: 1) }
    }

    /// The up-sampled read equals resizing (nearest) and convolving the parts, values and
    /// gradients: batch 2, an odd target grid (not exactly 2×), 18 coarse channels (a 16-channel
    /// gradient block and a rest of 2), 2D and 3D, with the fused rectifier.
    func testConvOverUpsampledPartEqualsConvOfTheResizedPartsWithItsGradients() {
        for (coarseGrid, grid) in [([3, 2, 3], [5, 4, 6]), ([4, 3], [8, 6])] {
            let coarse = random([2, 18] + coarseGrid), skip = random([2, 3] + grid)
            let w = random([5, 21] + Array(repeating: 3, count: grid.count)), b = random([5])
            let fused = conv(upsampling: coarse, skip: skip, w, b, padding: 1, activation: .leaky(0.2))
            let plain = conv(parts: [resize(coarse, to: grid, mode: .nearest), skip], w, b, padding: 1, activation: .leaky(0.2))
            XCTAssertEqual(fused.shape, [2, 5] + grid)
            XCTAssertEqual(fused.scalars, plain.scalars, "the kernels read the same values in the same order")
            let r = random(fused.shape)
            let (gFused, gPlain) = upsampledAndResizedGradients(coarse, skip, w, b, grid: grid, r: r)
            for (a, c) in zip(gFused, gPlain) {
                XCTAssertEqual(a.count, c.count)
                for (u, v) in zip(a, c) { XCTAssertEqual(u, v, accuracy: 1e-5 * max(1, abs(v))) }
            }
        }
    }

    /// d(Σ r·y)/d(coarse, skip, weight) of `conv(upsampling:…)` and of resize + `conv(parts:)`,
    /// both with the fused leaky rectifier.
    func upsampledAndResizedGradients(_ coarse: Tensor, _ skip: Tensor, _ w: Tensor, _ b: Tensor, grid: [Int], r: Tensor)
        -> (upsampled: [[Float]], resized: [[Float]]) {
        (gradients([coarse, skip], weight: w, r: r) { conv(upsampling: $0[0], skip: $0[1], $0[2], b, padding: 1, activation: .leaky(0.2)) },
         gradients([coarse, skip], weight: w, r: r) {
             conv(parts: [resize($0[0], to: grid, mode: .nearest), $0[1]], $0[2], b, padding: 1, activation: .leaky(0.2))
         })
    }

    /// The same at layer sizes where the kernels compute the up-sampled part on the coarse grid
    /// (Winograd, exactly ×2: 16 + 16 → 16 channels, 256 tiles; 2D 32 + 32 → 32, 256 tiles):
    /// equal to float32 rounding, values and gradients.
    func testConvOverAnExactlyDoubledPartOnTheCoarseGridEqualsConvOfTheResizedParts() {
        for (coarseGrid, grid, channels) in [([4, 8, 8], [8, 16, 16], 16), ([16, 16], [32, 32], 32)] {
            let coarse = random([1, channels] + coarseGrid), skip = random([1, channels] + grid)
            let w = random([channels, 2 * channels] + Array(repeating: 3, count: grid.count)), b = random([channels])
            let fused = conv(upsampling: coarse, skip: skip, w, b, padding: 1, activation: .leaky(0.2))
            let plain = conv(parts: [resize(coarse, to: grid, mode: .nearest), skip], w, b, padding: 1, activation: .leaky(0.2))
            let scale = plain.scalars.map(abs).max()!
            for (u, v) in zip(fused.scalars, plain.scalars) { XCTAssertEqual(u, v, accuracy: 1e-5 * scale) }
            let r = random(fused.shape)
            let (gFused, gPlain) = upsampledAndResizedGradients(coarse, skip, w, b, grid: grid, r: r)
            for (a, c) in zip(gFused, gPlain) {
                XCTAssertEqual(a.count, c.count)
                let scale = c.map(abs).max()!
                for (u, v) in zip(a, c) { XCTAssertEqual(u, v, accuracy: 1e-5 * scale) }
            }
        }
    }

    func testConvOverUpsampledPartGradientsMatchFiniteDifferences() {
        let coarse = random([1, 2, 2, 3, 2]), skip = random([1, 3, 4, 5, 4])
        let w = random([3, 5, 3, 3, 3]), b = random([3])
        assertGradientMatchesFiniteDifferences([coarse, skip, w, b]) { conv(upsampling: $0[0], skip: $0[1], $0[2], $0[3], padding: 1) }
    }

    func testOnlyThePartsThatNeedAGradientGetOne() {
        let a = random([1, 2, 4, 4]), b = random([1, 3, 4, 4]).requiringGrad(), w = random([2, 5, 3, 3]).requiringGrad()
        conv(parts: [a, b], w, padding: 1).sum().backward()
        XCTAssertNil(a.grad)
        XCTAssertEqual(b.grad?.shape, [1, 3, 4, 4])
        XCTAssertEqual(w.grad?.shape, [2, 5, 3, 3])
    }
}
