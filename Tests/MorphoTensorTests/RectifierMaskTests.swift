import XCTest
import MorphoKernels
@testable import MorphoTensor

final class RectifierMaskTests: XCTestCase {
    var rng = RandomGenerator(seed: 41)

    /// Values around the kink (±0, NaN, ±∞, tiny) among random ones.
    func values(_ count: Int) -> [Float] {
        let special: [Float] = [0, -0.0, .nan, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 1, -1]
        return (0..<count).map { i in i % 5 == 0 ? special[(i / 5) % special.count] : rng.normal() }
    }

    /// Bits and rectified gradients on counts around the 16-lane and 32-bit word edges, a word
    /// count above one worker's grain, and both slopes: bit i is y[i] > 0, and the rectified
    /// gradient is bit for bit what the kernels' fused `Rectification` reads.
    func testBitsAreThePositiveValuesAndRectifyEqualsTheFusedFactor() {
        for count in [1, 15, 16, 17, 31, 32, 33, 47, 64, 100, 4096 * 32 * 2 + 19] {
            let y = values(count), g = values(count)
            for slope: Float in [0, 0.2] {
                let mask = y.withUnsafeBufferPointer { RectifierMask(output: $0.baseAddress!, count: count, slope: slope) }
                XCTAssertEqual(mask.positives, y.map { $0 > 0 }, "count \(count)")
                let expected = zip(g, y).map { x, v in v > 0 ? x : slope * x }
                var out = [Float](repeating: 7, count: count)
                g.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { mask.rectify(src.baseAddress!, into: $0.baseAddress!) } }
                var inPlace = g
                inPlace.withUnsafeMutableBufferPointer { mask.rectify($0.baseAddress!) }
                for (name, result) in [("into", out), ("in place", inPlace)] {
                    XCTAssertEqual(result.map(\.bitPattern), expected.map(\.bitPattern), "\(name), count \(count), slope \(slope)")
                }
            }
        }
    }

    /// A gradient rectified by the mask, then read by the plain kernels, gives the same data and
    /// weight gradients, bit for bit, as the kernels reading the raw gradient with the output
    /// (`rectifiedBy:`), the path the convolution op took before: direct and Winograd layers.
    func testMaskRectifiedGradientMatchesTheKernelsFusedRectifierExactly() {
        for (shape, cout, stride) in [([1, 3, 6, 5, 7], 5, 1), ([1, 16, 16, 16, 16], 16, 1), ([2, 4, 7, 6, 5], 6, 2)] {
            let x = Tensor.randomUniform(shape, low: -1, high: 1, using: &rng)
            let w = Tensor.randomUniform([cout, shape[1], 3, 3, 3], low: -1, high: 1, using: &rng)
            let y2 = conv(x, w, stride: stride, padding: 1, activation: .leaky(0.2))
            let dy2 = Tensor.randomUniform(y2.shape, low: -1, high: 1, using: &rng)
            let g = ConvGeometry(n: shape[0], cin: shape[1], cout: cout, inD: shape[2], inH: shape[3], inW: shape[4],
                                 kernel: (3, 3, 3), stride: (stride, stride, stride), padding: (1, 1, 1))
            func gradients(fused: Bool) -> (data: [Float], weight: [Float]) {
                var grad = dy2.scalars
                let mask = RectifierMask(output: y2.storage.pointer, count: y2.count, slope: 0.2)
                if !fused { grad.withUnsafeMutableBufferPointer { mask.rectify($0.baseAddress!) } }
                let rectifier = fused ? Rectification(output: UnsafePointer(y2.storage.pointer), slope: 0.2) : nil
                var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: w.count)
                grad.withUnsafeBufferPointer { gp in
                    dx.withUnsafeMutableBufferPointer {
                        Convolution.backwardData(g, gradOutput: gp.baseAddress!, rectifiedBy: rectifier, weight: w.storage.pointer,
                                                 inputChannels: 0..<shape[1], gradInput: $0.baseAddress!)
                    }
                    dw.withUnsafeMutableBufferPointer {
                        Convolution.backwardWeight(g, inputs: ConvolutionSource(x.storage.pointer, channels: shape[1], volume: g.inVoxels),
                                                   gradOutput: gp.baseAddress!, rectifiedBy: rectifier, gradWeight: $0.baseAddress!,
                                                   gradBias: nil)
                    }
                }
                return (dx, dw)
            }
            let (fused, masked) = (gradients(fused: true), gradients(fused: false))
            XCTAssertEqual(fused.data.map(\.bitPattern), masked.data.map(\.bitPattern), "\(shape) stride \(stride)")
            XCTAssertEqual(fused.weight.map(\.bitPattern), masked.weight.map(\.bitPattern), "\(shape) stride \(stride)")
        }
    }
}

final class RectifiedConvolutionBackwardTests: XCTestCase {
    var rng = RandomGenerator(seed: 43)

    func random(_ shape: [Int]) -> Tensor { Tensor.randomUniform(shape, low: -1, high: 1, using: &rng) }

    /// The output's gradient arriving shared with another node (`y + z` hands the same tensor
    /// to both) is rectified into a copy: z's gradient keeps the raw values, and every gradient
    /// equals the unfused conv → leakyRelu path and finite differences.
    func testASharedOutputGradientIsRectifiedIntoACopy() {
        let x = random([1, 3, 5, 6, 4]), w = random([4, 3, 3, 3, 3]), b = random([4])
        let z = random([1, 4, 5, 6, 4])
        func grads(fused: Bool) -> [[Float]] {
            let (xl, wl, bl, zl) = (x.requiringGrad(), w.requiringGrad(), b.requiringGrad(), z.requiringGrad())
            let y = fused ? conv(xl, wl, bl, padding: 1, activation: .leaky(0.2)) : conv(xl, wl, bl, padding: 1).leakyRelu(0.2)
            let r = Tensor(shape: y.shape) { p in for i in 0..<y.count { p[i] = Float(i % 7) - 3 } }
            ((y + zl) * r).sum().backward()
            XCTAssertEqual(zl.grad!.scalars, r.scalars, "the shared gradient is left alone")
            return [xl.grad!.scalars, wl.grad!.scalars, bl.grad!.scalars]
        }
        XCTAssertEqual(grads(fused: true), grads(fused: false))
        assertGradientMatchesFiniteDifferences([x, w, b, z], h: 1e-3, rtol: 3e-2) {
            conv($0[0], $0[1], $0[2], padding: 1, activation: .leaky(0.2)) + $0[3]
        }
    }

    /// A chain of two rectified convolutions: the backward holds neither output for its
    /// rectifier, and the second layer lets its input (the first output) go before allocating
    /// the first output's gradient, so at most one activation-sized gradient is added to what
    /// was live (it used to be two, plus both outputs kept until the end).
    func testARectifiedChainsBackwardAddsOneActivationAtMost() {
        let x = random([1, 8, 32, 32, 32])
        let w1 = random([16, 8, 3, 3, 3]).requiringGrad(), w2 = random([16, 16, 3, 3, 3]).requiringGrad()
        let activation = 16 * 32 * 32 * 32 * MemoryLayout<Float>.stride
        let start = StoragePool.liveBytes
        let loss: Tensor = {
            let y1 = conv(x, w1, padding: 1, activation: .leaky(0.2))
            return conv(y1, w2, padding: 1, activation: .leaky(0.2)).sum()
        }()
        let before = StoragePool.liveBytes
        XCTAssertLessThan(before - start, activation + activation / 4, "y1 is kept for the second layer's weight gradient, y2 not at all")
        StoragePool.resetPeak()
        loss.backward()
        XCTAssertLessThan(StoragePool.peakLiveBytes - before, activation + activation / 4)
        XCTAssertNotNil(w1.grad)
    }
}
