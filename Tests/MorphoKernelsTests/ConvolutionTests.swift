import XCTest
@testable import MorphoKernels

/// `Convolution` against an independent float64 reference written straight from the
/// definition (gather for the forward pass, scatter for the data gradient, a plain triple sum
/// for the weight gradient), on shapes chosen to hit every edge of the tiled kernels: channel
/// counts that are not multiples of 8 or 16, widths that are not multiples of 16, stride 2,
/// kernel 1/2/3, padding 0–2, anisotropic kernels, 2D and 3D, batch > 1, tiles with a short
/// last block of rows; plus the adjoint identities and central differences of a scalar loss.
final class ConvolutionTests: XCTestCase {
    /// Shapes every kernel is compared on. Sizes are small enough for the O(N·K·V) reference.
    static let shapes: [ConvGeometry] = [
        .cubic(n: 2, cin: 3, cout: 5, size: (7, 9, 11), kernel: 3, stride: 1, padding: 1),
        .cubic(cin: 17, cout: 19, size: (6, 5, 21), kernel: 3, stride: 1, padding: 1),
        .cubic(cin: 4, cout: 6, size: (8, 8, 8), kernel: 2, stride: 2, padding: 0),
        .cubic(cin: 5, cout: 3, size: (9, 7, 10), kernel: 3, stride: 2, padding: 1),
        .cubic(cin: 3, cout: 4, size: (8, 9, 10), kernel: 3, stride: 2, padding: 0),
        .cubic(cin: 2, cout: 9, size: (5, 6, 7), kernel: 1, stride: 1, padding: 0),
        .cubic(cin: 3, cout: 2, size: (5, 6, 7), kernel: 1, stride: 2, padding: 0),
        .cubic(cin: 2, cout: 3, size: (6, 5, 7), kernel: 3, stride: 1, padding: 2),
        .cubic(n: 1, cin: 1, cout: 33, size: (4, 6, 70), kernel: 3, stride: 1, padding: 1),
        .cubic(cin: 16, cout: 16, size: (10, 12, 40), kernel: 3, stride: 1, padding: 1),
        .cubic(cin: 7, cout: 20, size: (3, 4, 5), kernel: 2, stride: 1, padding: 1),
        ConvGeometry(n: 2, cin: 6, cout: 7, inD: 5, inH: 8, inW: 9, kernel: (1, 3, 3), stride: (1, 2, 1), padding: (0, 1, 1)),
        ConvGeometry(n: 1, cin: 3, cout: 5, inD: 7, inH: 6, inW: 5, kernel: (3, 1, 2), stride: (2, 1, 2), padding: (1, 0, 1)),
        .planar(n: 3, cin: 1, cout: 16, size: (13, 35), kernel: 3, stride: 1, padding: 1),
        .planar(n: 2, cin: 16, cout: 16, size: (19, 33), kernel: 3, stride: 2, padding: 1),
        .planar(n: 2, cin: 20, cout: 10, size: (10, 17), kernel: 2, stride: 2, padding: 0),
        .planar(n: 4, cin: 9, cout: 1, size: (23, 29), kernel: 3, stride: 1, padding: 1),
        .planar(n: 1, cin: 32, cout: 24, size: (64, 48), kernel: 3, stride: 1, padding: 1),
        // Widths just under a multiple of 16 take the row-vector path with a partial last vector.
        .cubic(n: 2, cin: 5, cout: 12, size: (4, 7, 31), kernel: 3, stride: 1, padding: 1),
        .planar(n: 2, cin: 3, cout: 9, size: (17, 15), kernel: 3, stride: 1, padding: 1),
        .planar(n: 1, cin: 8, cout: 16, size: (9, 64), kernel: 3, stride: 1, padding: 1),
        // Stride 2 on wide rows: the 16-lane even-lane gather, long dilated rows.
        .cubic(cin: 3, cout: 5, size: (4, 5, 70), kernel: 3, stride: 2, padding: 1),
        .planar(n: 2, cin: 4, cout: 6, size: (6, 80), kernel: 2, stride: 2, padding: 0),
        // Stride 2 on rows of 16 to 32: 16- and 8-lane gathers, 8-voxel dilated rows.
        .cubic(cin: 3, cout: 4, size: (4, 5, 32), kernel: 3, stride: 2, padding: 1),
        .cubic(cin: 2, cout: 3, size: (5, 4, 24), kernel: 3, stride: 2, padding: 1),
        .planar(n: 2, cin: 3, cout: 5, size: (7, 16), kernel: 3, stride: 2, padding: 1),
    ]

    func testForwardMatchesNaiveReferenceOnOddShapes() {
        for g in Self.shapes {
            let x = randomArray(g.inputCount, seed: 1)
            let w = randomArray(g.weightCount, seed: 2)
            let b = randomArray(g.cout, seed: 3)
            var y = [Float](repeating: .nan, count: g.outputCount)
            Convolution.forward(g, input: x, weight: w, bias: b, output: &y)
            let (ref, scale) = ConvolutionReference.forward(g, x, w, b)
            assertWithinConvolutionRounding(y, ref, scale, "forward \(g)")
        }
    }

    func testForwardWithoutBiasAddsNothing() {
        let g = ConvGeometry.cubic(cin: 3, cout: 5, size: (6, 7, 9), kernel: 3, stride: 1, padding: 1)
        let x = randomArray(g.inputCount, seed: 4)
        let w = randomArray(g.weightCount, seed: 5)
        var y = [Float](repeating: .nan, count: g.outputCount)
        Convolution.forward(g, input: x, weight: w, bias: nil, output: &y)
        let (ref, scale) = ConvolutionReference.forward(g, x, w, [Float](repeating: 0, count: g.cout))
        assertWithinConvolutionRounding(y, ref, scale, "forward without bias")
    }

    func testBackwardDataMatchesNaiveReferenceOnOddShapes() {
        for g in Self.shapes { assertBackwardDataMatchesReference(g, seeds: (6, 7), "backwardData \(g)") }
    }

    func testBackwardWeightMatchesNaiveReferenceOnOddShapes() {
        for g in Self.shapes {
            let x = randomArray(g.inputCount, seed: 8)
            let gy = randomArray(g.outputCount, seed: 9)
            var gw = [Float](repeating: .nan, count: g.weightCount)
            var gb = [Float](repeating: .nan, count: g.cout)
            Convolution.backwardWeight(g, input: x, gradOutput: gy, gradWeight: &gw, gradBias: &gb)
            let (ref, scale, refBias, biasScale) = ConvolutionReference.backwardWeight(g, x, gy)
            assertWithinConvolutionRounding(gw, ref, scale, "backwardWeight \(g)")
            assertWithinConvolutionRounding(gb, refBias, biasScale, "backwardWeight bias \(g)")
        }
    }

    /// The data gradient along W of a strided convolution both ways it runs: one pass over the
    /// dilated gradient rows (few gradient channels) and the parity phases scattered into every
    /// s-th voxel (many), on every strided shape and the transposed-convolution shape.
    func testDataGradientAlongStridedWMatchesTheReferenceAsDilatedRowsAndAsParityPhases() {
        let saved = Convolution.parityPhasesAlongWFromChannels
        defer { Convolution.parityPhasesAlongWFromChannels = saved }
        let strided = Self.shapes.filter { $0.stride.w > 1 }
            + [.cubic(cin: 8, cout: 16, size: (6, 6, 34), kernel: 3, stride: 2, padding: 1),
               .cubic(cin: 4, cout: 6, size: (6, 8, 16), kernel: 2, stride: 2, padding: 0),
               // Phases whose windows start apart (padding 0 and 2) on odd sizes (grids one apart),
               // over several tiles of rows and slices that share one slab per tile.
               .cubic(n: 2, cin: 5, cout: 7, size: (9, 11, 13), kernel: 3, stride: 2, padding: 0),
               .cubic(cin: 3, cout: 9, size: (7, 13, 21), kernel: 3, stride: 2, padding: 2),
               .planar(n: 1, cin: 4, cout: 6, size: (41, 37), kernel: 3, stride: 2, padding: 0)]
        XCTAssertGreaterThan(strided.count, 5)
        for threshold in [1, Int.max] {
            Convolution.parityPhasesAlongWFromChannels = threshold
            for g in strided {
                let (_, _, phasesW) = Convolution.dataGradientPhases(g)
                XCTAssertEqual(phasesW.count, threshold == 1 ? g.stride.w : 1, "\(g)")
                assertBackwardDataMatchesReference(g, seeds: (41, 42), "backwardData, W phases from \(threshold) channels, \(g)")
            }
        }
    }

    /// The AVX2 register blocks (6 channels × 1 vector, 16 × 6 for the weight gradient, reductions
    /// in chunks of 128 taps) on this machine whatever its ISA, on the direct kernels and on the
    /// Winograd paths (every shape that qualifies): an AVX-512 machine otherwise never runs them.
    func testTheAVX2RegisterBlocksMatchTheReference() {
        let saved = (ConvolutionMicrokernel.blocksForAVX512, WinogradConvolution.minimumChannels,
                     WinogradConvolution.minimumPlanarChannels, WinogradConvolution.minimumTiles)
        defer {
            (ConvolutionMicrokernel.blocksForAVX512, WinogradConvolution.minimumChannels,
             WinogradConvolution.minimumPlanarChannels, WinogradConvolution.minimumTiles) = saved
        }
        ConvolutionMicrokernel.blocksForAVX512 = false
        XCTAssertEqual(ConvolutionMicrokernel.spatialChannels, 6)
        XCTAssertEqual(ConvolutionMicrokernel.tapChunk > 0, ProcessInfo.processInfo.environment["MORPHOSEG_TAP_CHUNK"] == nil)
        for winograd in [false, true] {
            if winograd {
                (WinogradConvolution.minimumChannels, WinogradConvolution.minimumPlanarChannels, WinogradConvolution.minimumTiles) = (8, 8, 1)
            }
            let shapes = winograd ? Self.shapes.filter { WinogradConvolution.applies($0, sourceChannels: $0.cin, destinationChannels: $0.cout) }
                : Self.shapes
            if winograd { XCTAssertFalse(shapes.isEmpty) }
            for g in shapes {
                let x = randomArray(g.inputCount, seed: 31)
                let w = randomArray(g.weightCount, seed: 32)
                let b = randomArray(g.cout, seed: 33)
                let gy = randomArray(g.outputCount, seed: 34)
                var y = [Float](repeating: .nan, count: g.outputCount)
                var gx = [Float](repeating: .nan, count: g.inputCount)
                var gw = [Float](repeating: .nan, count: g.weightCount)
                Convolution.forward(g, input: x, weight: w, bias: b, output: &y)
                Convolution.backwardData(g, gradOutput: gy, weight: w, gradInput: &gx)
                Convolution.backwardWeight(g, input: x, gradOutput: gy, gradWeight: &gw, gradBias: nil)
                let (ry, sy) = ConvolutionReference.forward(g, x, w, b)
                assertWithinConvolutionRounding(y, ry, sy, "AVX2 blocks forward \(g)")
                let (rx, sx) = ConvolutionReference.backwardData(g, gy, w)
                assertWithinConvolutionRounding(gx, rx, sx, "AVX2 blocks backwardData \(g)")
                let (rw, sw, _, _) = ConvolutionReference.backwardWeight(g, x, gy)
                assertWithinConvolutionRounding(gw, rw, sw, "AVX2 blocks backwardWeight \(g)")
            }
        }
    }

    func testResultsDoNotDependOnTheThreadCount() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        let g = ConvGeometry.cubic(n: 2, cin: 5, cout: 11, size: (6, 9, 20), kernel: 3, stride: 1, padding: 1)
        let x = randomArray(g.inputCount, seed: 10)
        let w = randomArray(g.weightCount, seed: 11)
        let gy = randomArray(g.outputCount, seed: 12)
        var results = [[Float]]()
        for threads in [1, 2, 3] {
            Parallel.threads = threads
            var y = [Float](repeating: 0, count: g.outputCount)
            var gx = [Float](repeating: 0, count: g.inputCount)
            var gw = [Float](repeating: 0, count: g.weightCount)
            Convolution.forward(g, input: x, weight: w, bias: nil, output: &y)
            Convolution.backwardData(g, gradOutput: gy, weight: w, gradInput: &gx)
            Convolution.backwardWeight(g, input: x, gradOutput: gy, gradWeight: &gw, gradBias: nil)
            results.append(y + gx)
            let (ref, scale, _, _) = ConvolutionReference.backwardWeight(g, x, gy)
            assertWithinConvolutionRounding(gw, ref, scale, "backwardWeight with \(threads) threads")
        }
        // Each output voxel sums its taps in the same order whatever the tiling: bit-identical.
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(results[0], results[2])
    }

    /// ⟨conv(x), y⟩ = ⟨x, convᵀ(y)⟩ and ⟨conv_w(x), y⟩ = ⟨w, ∇_w⟨conv_w(x), y⟩⟩: the three
    /// kernels are adjoint to one another, checked in float64 sums.
    func testDataAndWeightGradientsAreAdjointsOfForward() {
        for g in Self.shapes {
            let x = randomArray(g.inputCount, seed: 13)
            let w = randomArray(g.weightCount, seed: 14)
            let y = randomArray(g.outputCount, seed: 15)
            var cx = [Float](repeating: 0, count: g.outputCount)
            var cty = [Float](repeating: 0, count: g.inputCount)
            var gw = [Float](repeating: 0, count: g.weightCount)
            Convolution.forward(g, input: x, weight: w, bias: nil, output: &cx)
            Convolution.backwardData(g, gradOutput: y, weight: w, gradInput: &cty)
            Convolution.backwardWeight(g, input: x, gradOutput: y, gradWeight: &gw, gradBias: nil)
            let lhs = dot(cx, y)
            let scale = sqrt(Double(g.cin * g.kernelVolume)) * sqrt(Double(g.outputCount)) + 1
            XCTAssertEqual(dot(x, cty), lhs, accuracy: 1e-5 * scale, "⟨conv x, y⟩ vs ⟨x, convᵀ y⟩ \(g)")
            XCTAssertEqual(dot(w, gw), lhs, accuracy: 1e-5 * scale, "⟨conv x, y⟩ vs ⟨w, ∇w⟩ \(g)")
        }
    }

    /// L(x, w, b) = ⟨conv(x; w) + b, y⟩: central differences in a few coordinates of x, w and b
    /// against backwardData / backwardWeight.
    func testGradientsMatchCentralDifferences() {
        let shapes: [ConvGeometry] = [
            .cubic(n: 2, cin: 3, cout: 4, size: (5, 6, 7), kernel: 3, stride: 2, padding: 1),
            .cubic(cin: 2, cout: 3, size: (4, 4, 6), kernel: 2, stride: 2, padding: 0),
            .planar(n: 2, cin: 5, cout: 6, size: (9, 11), kernel: 3, stride: 1, padding: 1),
        ]
        for g in shapes {
            var x = randomArray(g.inputCount, seed: 16)
            var w = randomArray(g.weightCount, seed: 17)
            var b = randomArray(g.cout, seed: 18)
            let y = randomArray(g.outputCount, seed: 19)
            func loss() -> Double {
                var out = [Float](repeating: 0, count: g.outputCount)
                Convolution.forward(g, input: x, weight: w, bias: b, output: &out)
                return dot(out, y)
            }
            var gx = [Float](repeating: 0, count: g.inputCount)
            var gw = [Float](repeating: 0, count: g.weightCount)
            var gb = [Float](repeating: 0, count: g.cout)
            Convolution.backwardData(g, gradOutput: y, weight: w, gradInput: &gx)
            Convolution.backwardWeight(g, input: x, gradOutput: y, gradWeight: &gw, gradBias: &gb)
            let h: Float = 0.0625  // L is linear in each argument: the difference is exact up to rounding
            func central(_ v: inout [Float], _ i: Int) -> Double {
                let saved = v[i]
                v[i] = saved + h
                let up = loss()
                v[i] = saved - h
                let down = loss()
                v[i] = saved
                return (up - down) / (2 * Double(h))
            }
            for i in stride(from: 0, to: g.inputCount, by: max(1, g.inputCount / 13)) {
                XCTAssertEqual(central(&x, i), Double(gx[i]), accuracy: 2e-3 * (1 + abs(Double(gx[i]))), "∂L/∂x[\(i)] \(g)")
            }
            for i in stride(from: 0, to: g.weightCount, by: max(1, g.weightCount / 11)) {
                XCTAssertEqual(central(&w, i), Double(gw[i]), accuracy: 2e-3 * (1 + abs(Double(gw[i]))), "∂L/∂w[\(i)] \(g)")
            }
            for i in 0..<g.cout {
                XCTAssertEqual(central(&b, i), Double(gb[i]), accuracy: 2e-3 * (1 + abs(Double(gb[i]))), "∂L/∂b[\(i)] \(g)")
            }
        }
    }

    /// The data gradient is PyTorch's transposed convolution: a kernel-2 stride-2 up-conv
    /// `[N, a, X] → [N, b, 2X]` places each input voxel's `b × 2³` weight block on its own
    /// 2×2×2 output cell, with no overlap.
    func testBackwardDataIsTheKernel2Stride2UpConvolution() {
        let (a, bch, size) = (6, 5, (3, 4, 5))
        let g = ConvGeometry.cubic(cin: bch, cout: a, size: (2 * size.0, 2 * size.1, 2 * size.2), kernel: 2, stride: 2, padding: 0)
        let x = randomArray(g.outputCount, seed: 20)  // the small grid, [1, a, 3, 4, 5]
        let w = randomArray(g.weightCount, seed: 21)  // [a, b, 2, 2, 2]
        var up = [Float](repeating: .nan, count: g.inputCount)
        Convolution.backwardData(g, gradOutput: x, weight: w, gradInput: &up)
        for c in 0..<bch {
            for z in 0..<g.inD {
                for yy in 0..<g.inH {
                    for xx in 0..<g.inW {
                        var s = 0.0
                        for ci in 0..<a {
                            let v = Double(x[((ci * size.0 + z / 2) * size.1 + yy / 2) * size.2 + xx / 2])
                            s += v * Double(w[(ci * bch + c) * 8 + ((z % 2) * 2 + yy % 2) * 2 + xx % 2])
                        }
                        let got = up[((c * g.inD + z) * g.inH + yy) * g.inW + xx]
                        XCTAssertEqual(Double(got), s, accuracy: 1e-5 * (1 + abs(s)))
                    }
                }
            }
        }
    }

    /// No im2col: the workspace depends on channels and row width, not on the volume, and stays
    /// within 64 MB for the project's largest layers on full-resolution brain MRI.
    func testFewTilesShareEvenlyBetweenTheWorkers() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 2
        // One 2D image: the row blocks that fit the slab (9 for 16 channels at 256², 5 for 32
        // at 128²) are cut finer to an even count, covering every row once.
        for (channels, size) in [(16, 256), (32, 128), (8, 37)] {
            let g = ConvGeometry.planar(n: 1, cin: channels, cout: channels, size: (size, size), kernel: 3, stride: 1, padding: 1)
            let tiling = ConvolutionTiling(Convolution.forwardPass(g), extraBytesPerRow: 0)
            XCTAssertEqual(tiling.count % 2, 0, "\(channels) channels at \(size)²: \(tiling.count) tiles")
            XCTAssertGreaterThanOrEqual(tiling.rows * tiling.count, size)
            XCTAssertLessThan(tiling.rows * (tiling.count - 1), size)
        }
        // Many tiles are left as they are.
        let batch = ConvGeometry.planar(n: 7, cin: 16, cout: 16, size: (256, 256), kernel: 3, stride: 1, padding: 1)
        XCTAssertGreaterThanOrEqual(ConvolutionTiling(Convolution.forwardPass(batch), extraBytesPerRow: 0).count, 7)
    }

    func testWorkspaceStaysBoundedWhateverTheVolume() {
        let limit = 64 << 20
        let shapes: [ConvGeometry] = [
            .cubic(cin: 16, cout: 16, size: (160, 192, 224), kernel: 3, stride: 1, padding: 1),
            .cubic(cin: 64, cout: 64, size: (160, 192, 224), kernel: 3, stride: 1, padding: 1),
            .cubic(cin: 32, cout: 64, size: (160, 192, 224), kernel: 3, stride: 2, padding: 1),
            .cubic(cin: 16, cout: 32, size: (320, 384, 448), kernel: 2, stride: 2, padding: 0),
            .cubic(cin: 128, cout: 128, size: (40, 48, 56), kernel: 3, stride: 1, padding: 1),
            .planar(n: 64, cin: 32, cout: 32, size: (1024, 1024), kernel: 3, stride: 1, padding: 1),
        ]
        for g in shapes {
            for workers in [1, 2, 8] {
                let bytes = Convolution.workspaceBytes(g, workers: workers)
                XCTAssertLessThanOrEqual(bytes, limit, "\(g) with \(workers) workers")
            }
        }
        // Doubling the volume leaves the workspace unchanged (same row width and channels).
        let small = ConvGeometry.cubic(cin: 16, cout: 16, size: (64, 128, 128), kernel: 3, stride: 1, padding: 1)
        let deep = ConvGeometry.cubic(cin: 16, cout: 16, size: (128, 128, 128), kernel: 3, stride: 1, padding: 1)
        XCTAssertEqual(Convolution.workspaceBytes(small, workers: 2), Convolution.workspaceBytes(deep, workers: 2))
    }

    func testFlopCountIsTwoMultiplyAddsPerTap() {
        let g = ConvGeometry.cubic(cin: 16, cout: 32, size: (64, 64, 64), kernel: 3, stride: 1, padding: 1)
        XCTAssertEqual(g.outD, 64)
        XCTAssertEqual(g.flops, 2 * 16 * 32 * 27 * 262_144)
        let down = ConvGeometry.cubic(cin: 16, cout: 32, size: (9, 9, 9), kernel: 3, stride: 2, padding: 1)
        XCTAssertEqual([down.outD, down.outH, down.outW], [5, 5, 5])
    }

    // MARK: helpers

    private func dot(_ a: [Float], _ b: [Float]) -> Double {
        var s = 0.0
        for i in 0..<a.count { s += Double(a[i]) * Double(b[i]) }
        return s
    }
}

/// Runs `Convolution.backwardData` of `g` on a random output gradient and weight (from
/// `seeds`) and asserts it equals the float64 definition within float32 rounding.
func assertBackwardDataMatchesReference(_ g: ConvGeometry, seeds: (UInt64, UInt64), _ what: String,
                                        file: StaticString = #filePath, line: UInt = #line) {
    let gy = randomArray(g.outputCount, seed: seeds.0), w = randomArray(g.weightCount, seed: seeds.1)
    var gx = [Float](repeating: .nan, count: g.inputCount)
    Convolution.backwardData(g, gradOutput: gy, weight: w, gradInput: &gx)
    let (ref, scale) = ConvolutionReference.backwardData(g, gy, w)
    assertWithinConvolutionRounding(gx, ref, scale, what, file: file, line: line)
}

/// Asserts `got` equals the float64 reference within float32 rounding of the sum of |terms|
/// (`scale`, 1e-5 of it, plus 1e-6), naming the worst element.
func assertWithinConvolutionRounding(_ got: [Float], _ ref: [Double], _ scale: [Double], _ what: String,
                                     file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, ref.count, what, file: file, line: line)
    var worst = 0.0, worstIndex = 0
    for i in 0..<ref.count {
        // Float32 rounding of a sum grows with the sum of |terms|.
        let excess = abs(Double(got[i]) - ref[i]) / (1e-5 * scale[i] + 1e-6)
        if !(excess <= worst) { worst = excess; worstIndex = i }
    }
    XCTAssertLessThanOrEqual(worst, 1, "\(what): element \(worstIndex) got \(got[worstIndex]) want \(ref[worstIndex])",
                             file: file, line: line)
}

/// Uniform values in [−1, 1) from SplitMix64: reproducible across runs and platforms.
func randomArray(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15
    return (0..<count).map { _ in
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(Double(z >> 40) / Double(1 << 24) * 2 - 1)
    }
}

/// The definition, in float64, one voxel at a time. Each function also returns, per element,
/// the sum of |terms|, which bounds float32 rounding of the fast kernels.
enum ConvolutionReference {
    /// Input index read by output `o` through tap `k` on one axis, or nil if in the padding.
    static func source(_ o: Int, _ k: Int, stride: Int, padding: Int, size: Int) -> Int? {
        let i = o * stride + k - padding
        return i >= 0 && i < size ? i : nil
    }

    /// Calls `body(n, co, ci, outIndex, inIndex, weightIndex)` for every (output, tap) pair
    /// that reads inside the input.
    static func forEachTerm(_ g: ConvGeometry, _ body: (Int, Int, Int, Int, Int, Int) -> Void) {
        for n in 0..<g.n {
            for co in 0..<g.cout {
                for od in 0..<g.outD { for oh in 0..<g.outH { for ow in 0..<g.outW {
                    let o = (((n * g.cout + co) * g.outD + od) * g.outH + oh) * g.outW + ow
                    for ci in 0..<g.cin {
                        for kd in 0..<g.kernel.d {
                            guard let id = source(od, kd, stride: g.stride.d, padding: g.padding.d, size: g.inD) else { continue }
                            for kh in 0..<g.kernel.h {
                                guard let ih = source(oh, kh, stride: g.stride.h, padding: g.padding.h, size: g.inH) else { continue }
                                for kw in 0..<g.kernel.w {
                                    guard let iw = source(ow, kw, stride: g.stride.w, padding: g.padding.w, size: g.inW) else { continue }
                                    let i = (((n * g.cin + ci) * g.inD + id) * g.inH + ih) * g.inW + iw
                                    let k = (((co * g.cin + ci) * g.kernel.d + kd) * g.kernel.h + kh) * g.kernel.w + kw
                                    body(n, co, ci, o, i, k)
                                }
                            }
                        }
                    }
                } } }
            }
        }
    }

    static func forward(_ g: ConvGeometry, _ x: [Float], _ w: [Float], _ b: [Float]) -> ([Double], [Double]) {
        var y = [Double](repeating: 0, count: g.outputCount)
        var scale = [Double](repeating: 0, count: g.outputCount)
        forEachTerm(g) { _, _, _, o, i, k in
            let t = Double(w[k]) * Double(x[i])
            y[o] += t
            scale[o] += abs(t)
        }
        for o in 0..<g.outputCount {
            let co = (o / g.outVoxels) % g.cout
            y[o] += Double(b[co])
            scale[o] += abs(Double(b[co]))
        }
        return (y, scale)
    }

    /// Scatter form: each output gradient pushes through each tap to the input voxel it read.
    static func backwardData(_ g: ConvGeometry, _ gy: [Float], _ w: [Float]) -> ([Double], [Double]) {
        var gx = [Double](repeating: 0, count: g.inputCount)
        var scale = [Double](repeating: 0, count: g.inputCount)
        forEachTerm(g) { _, _, _, o, i, k in
            let t = Double(w[k]) * Double(gy[o])
            gx[i] += t
            scale[i] += abs(t)
        }
        return (gx, scale)
    }

    static func backwardWeight(_ g: ConvGeometry, _ x: [Float], _ gy: [Float]) -> ([Double], [Double], [Double], [Double]) {
        var gw = [Double](repeating: 0, count: g.weightCount)
        var scale = [Double](repeating: 0, count: g.weightCount)
        forEachTerm(g) { _, _, _, o, i, k in
            let t = Double(gy[o]) * Double(x[i])
            gw[k] += t
            scale[k] += abs(t)
        }
        var gb = [Double](repeating: 0, count: g.cout)
        var biasScale = [Double](repeating: 0, count: g.cout)
        for o in 0..<g.outputCount {
            let co = (o / g.outVoxels) % g.cout
            gb[co] += Double(gy[o])
            biasScale[co] += abs(Double(gy[o]))
        }
        return (gw, scale, gb, biasScale)
    }
}
