import XCTest
@testable import MorphoKernels

/// `WinogradConvolution` (F(2×2×2, 3×3×3) and F(2×2, 3×3)) against the float64 definition, on
/// shapes that hit its edges: odd grids (tiles cut by the last row, column and slice), widths
/// with whole 16-tile segments that take the vector gather and a ragged rest, batches whose
/// 48-tile blocks straddle two items, channel counts that leave a short channel block, and the
/// fused leaky-rectifier derivative on the data gradient. The transforms add, subtract and
/// halve: results stay within float32 rounding of the sum of |terms|, as the direct kernels'. `ConvolutionTests.shapes` also runs
/// through it wherever it applies; these are the shapes chosen for it.
final class WinogradConvolutionTests: XCTestCase {
    // These shapes are small: let every one of them through `Convolution`'s Winograd path, and
    // test Winograd even when MORPHOSEG_CONV=direct / MORPHOSEG_CONV_WEIGHT=direct are set (they
    // used to turn these tests silently into direct-kernel tests).
    private var saved = (0, 0, 0)
    private var savedEnabled = (true, true)
    override func setUp() {
        saved = (WinogradConvolution.minimumChannels, WinogradConvolution.minimumPlanarChannels, WinogradConvolution.minimumTiles)
        (WinogradConvolution.minimumChannels, WinogradConvolution.minimumPlanarChannels, WinogradConvolution.minimumTiles) = (8, 8, 1)
        savedEnabled = (WinogradConvolution.enabled, WinogradConvolution.weightGradientEnabled)
        (WinogradConvolution.enabled, WinogradConvolution.weightGradientEnabled) = (true, true)
    }
    override func tearDown() {
        (WinogradConvolution.minimumChannels, WinogradConvolution.minimumPlanarChannels, WinogradConvolution.minimumTiles) = saved
        (WinogradConvolution.enabled, WinogradConvolution.weightGradientEnabled) = savedEnabled
    }

    func testTheWinogradPathsAreOnWhateverTheEnvironmentSays() {
        let g = ConvGeometry.cubic(n: 1, cin: 16, cout: 16, size: (8, 8, 8), kernel: 3, stride: 1, padding: 1)
        XCTAssertTrue(WinogradConvolution.applies(g, sourceChannels: 16, destinationChannels: 16))
        let zeros = [Float](repeating: 0, count: g.inputCount)
        zeros.withUnsafeBufferPointer { p in
            XCTAssertTrue(WinogradConvolution.appliesToWeightGradient(g, source: ConvolutionSource(p.baseAddress!, channels: 16, volume: g.inVoxels)))
        }
    }

    static let shapes: [ConvGeometry] = [
        .cubic(n: 2, cin: 8, cout: 13, size: (5, 7, 35), kernel: 3, stride: 1, padding: 1),
        .cubic(n: 1, cin: 16, cout: 8, size: (3, 2, 67), kernel: 3, stride: 1, padding: 1),
        .cubic(n: 3, cin: 9, cout: 10, size: (1, 3, 3), kernel: 3, stride: 1, padding: 1),
        // Rows ending 16 voxels into a segment's 32 (read as one half-width vector).
        .cubic(n: 1, cin: 8, cout: 6, size: (3, 5, 48), kernel: 3, stride: 1, padding: 1),
        .planar(n: 3, cin: 9, cout: 8, size: (15, 37), kernel: 3, stride: 1, padding: 1),
        .planar(n: 2, cin: 20, cout: 11, size: (1, 70), kernel: 3, stride: 1, padding: 1),
        // Interior 2D segments (`transformInteriorPlanar`): one at a row's start, one ending with it.
        .planar(n: 2, cin: 10, cout: 9, size: (12, 64), kernel: 3, stride: 1, padding: 1),
    ]

    func testByDefaultItTakesWide3DLayersAnd2DLayersOfThirtyTwoChannelsWithManyTiles() {
        tearDown()
        defer { setUp() }
        let wide = ConvGeometry.cubic(cin: 32, cout: 32, size: (32, 32, 32), kernel: 3, stride: 1, padding: 1)
        XCTAssertEqual(WinogradConvolution.applies(wide, sourceChannels: 32, destinationChannels: 32), WinogradConvolution.enabled)
        let sixteen = ConvGeometry.cubic(cin: 16, cout: 16, size: (64, 64, 64), kernel: 3, stride: 1, padding: 1)
        XCTAssertEqual(WinogradConvolution.applies(sixteen, sourceChannels: 16, destinationChannels: 16), WinogradConvolution.enabled)
        let thin = ConvGeometry.cubic(cin: 8, cout: 16, size: (64, 64, 64), kernel: 3, stride: 1, padding: 1)
        XCTAssertFalse(WinogradConvolution.applies(thin, sourceChannels: 8, destinationChannels: 16))
        let deep = ConvGeometry.cubic(cin: 64, cout: 64, size: (16, 16, 16), kernel: 3, stride: 1, padding: 1)
        XCTAssertEqual(WinogradConvolution.applies(deep, sourceChannels: 64, destinationChannels: 64), WinogradConvolution.enabled)
        let small = ConvGeometry.cubic(cin: 64, cout: 64, size: (8, 8, 8), kernel: 3, stride: 1, padding: 1)
        XCTAssertFalse(WinogradConvolution.applies(small, sourceChannels: 64, destinationChannels: 64))
        let planar = ConvGeometry.planar(n: 1, cin: 32, cout: 32, size: (128, 128), kernel: 3, stride: 1, padding: 1)
        XCTAssertEqual(WinogradConvolution.applies(planar, sourceChannels: 32, destinationChannels: 32), WinogradConvolution.enabled)
        let planarSixteen = ConvGeometry.planar(n: 1, cin: 16, cout: 16, size: (256, 256), kernel: 3, stride: 1, padding: 1)
        XCTAssertFalse(WinogradConvolution.applies(planarSixteen, sourceChannels: 16, destinationChannels: 16))
        let planarNarrow = ConvGeometry.planar(n: 8, cin: 16, cout: 32, size: (128, 128), kernel: 3, stride: 1, padding: 1)
        XCTAssertFalse(WinogradConvolution.applies(planarNarrow, sourceChannels: 16, destinationChannels: 32))
    }

    func testBlocksGoToWorkersInRunsOfConsecutiveBlocks() {
        // 64³ at 16 channels: 32 768 tiles, 1 024 blocks, runs of 64 on 2 workers (8 each).
        XCTAssertEqual(WinogradConvolution.claimGrain(blocks: 1024, workers: 2), 64)
        // Few blocks: one at a time, so that both workers get some.
        XCTAssertEqual(WinogradConvolution.claimGrain(blocks: 12, workers: 2), 1)
        XCTAssertEqual(WinogradConvolution.claimGrain(blocks: 1, workers: 1), 1)
    }

    func testItTakesStrideOnePaddingOneKernelThreeLayersOfAtLeastEightChannels() {
        XCTAssertTrue(WinogradConvolution.applies(.cubic(cin: 16, cout: 16, size: (8, 8, 8), kernel: 3, stride: 1, padding: 1),
                                                  sourceChannels: 16, destinationChannels: 16) || !WinogradConvolution.enabled)
        XCTAssertTrue(WinogradConvolution.applies(.planar(n: 2, cin: 8, cout: 32, size: (9, 9), kernel: 3, stride: 1, padding: 1),
                                                  sourceChannels: 8, destinationChannels: 32) || !WinogradConvolution.enabled)
        // The first layer, stride 2, kernel 2 and padding 0 stay on the direct kernels.
        XCTAssertFalse(WinogradConvolution.applies(.cubic(cin: 1, cout: 16, size: (8, 8, 8), kernel: 3, stride: 1, padding: 1),
                                                   sourceChannels: 1, destinationChannels: 16))
        XCTAssertFalse(WinogradConvolution.applies(.cubic(cin: 16, cout: 16, size: (8, 8, 8), kernel: 3, stride: 2, padding: 1),
                                                   sourceChannels: 16, destinationChannels: 16))
        XCTAssertFalse(WinogradConvolution.applies(.cubic(cin: 16, cout: 16, size: (8, 8, 8), kernel: 2, stride: 1, padding: 1),
                                                   sourceChannels: 16, destinationChannels: 16))
        XCTAssertFalse(WinogradConvolution.applies(.cubic(cin: 16, cout: 16, size: (8, 8, 8), kernel: 3, stride: 1, padding: 0),
                                                   sourceChannels: 16, destinationChannels: 16))
    }

    func testForwardMatchesTheDefinitionWithAndWithoutTheFusedRectifier() {
        for g in Self.shapes {
            for slope in [nil, Float(0.2)] {
                let x = randomArray(g.inputCount, seed: 21), w = randomArray(g.weightCount, seed: 22), b = randomArray(g.cout, seed: 23)
                var y = [Float](repeating: .nan, count: g.outputCount)
                x.withUnsafeBufferPointer { xp in
                    w.withUnsafeBufferPointer { wp in
                        b.withUnsafeBufferPointer { bp in
                            y.withUnsafeMutableBufferPointer { yp in
                                WinogradConvolution.run(
                                    WinogradConvolution.Plan(g, sourceChannels: g.cin, destinationChannels: g.cout),
                                    filter: .forward(wp.baseAddress!, sourceChannels: g.cin, taps: g.kernelVolume), bias: bp.baseAddress,
                                    source: ConvolutionSource(xp.baseAddress!, channels: g.cin, volume: g.inVoxels),
                                    destination: yp.baseAddress!, rectifierSlope: slope)
                            }
                        }
                    }
                }
                let (linear, scale) = ConvolutionReference.forward(g, x, w, b)
                let ref = slope.map { s in linear.map { $0 > 0 ? $0 : Double(s) * $0 } } ?? linear
                assertWithinConvolutionRounding(y, ref, scale, "Winograd forward \(g), slope \(String(describing: slope))")
            }
        }
    }

    func testDataGradientMatchesTheDefinitionWithAndWithoutTheRectifier() {
        for g in Self.shapes {
            let gy = randomArray(g.outputCount, seed: 24), w = randomArray(g.weightCount, seed: 25)
            // The rectified layer's output: about half the voxels negative, where the gradient is scaled by the slope.
            let y = randomArray(g.outputCount, seed: 26), slope: Float = 0.2
            let rectified = zip(gy, y).map { $1 > 0 ? $0 : $0 * slope }
            for useRectifier in [false, true] {
                var gx = [Float](repeating: .nan, count: g.inputCount)
                gy.withUnsafeBufferPointer { gp in
                    y.withUnsafeBufferPointer { yp in
                        w.withUnsafeBufferPointer { wp in
                            Convolution.backwardData(
                                g, gradOutput: gp.baseAddress!,
                                rectifiedBy: useRectifier ? Rectification(output: yp.baseAddress!, slope: slope) : nil,
                                weight: wp.baseAddress!, inputChannels: 0..<g.cin, gradInput: &gx)
                        }
                    }
                }
                let (ref, scale) = ConvolutionReference.backwardData(g, useRectifier ? rectified : gy, w)
                assertWithinConvolutionRounding(gx, ref, scale, "Winograd data gradient \(g), rectifier \(useRectifier)")
            }
        }
    }

    func testWeightGradientMatchesTheDefinitionWithAndWithoutTheRectifier() {
        // The 3D shapes, and one with more than 16 output channels (two channel groups, the second short).
        let shapes = Self.shapes.filter { $0.kernel.d == 3 }
            + [.cubic(n: 2, cin: 17, cout: 21, size: (6, 9, 37), kernel: 3, stride: 1, padding: 1)]
        for g in shapes {
            let zeros = [Float](repeating: 0, count: g.inputCount)
            zeros.withUnsafeBufferPointer { p in
                let source = ConvolutionSource(p.baseAddress!, channels: g.cin, volume: g.inVoxels)
                XCTAssertEqual(WinogradConvolution.appliesToWeightGradient(g, source: source),
                               WinogradConvolution.applies(g, sourceChannels: g.cin, destinationChannels: g.cout)
                                   && WinogradConvolution.weightGradientEnabled, "\(g)")
            }
            let x = randomArray(g.inputCount, seed: 31), gy = randomArray(g.outputCount, seed: 32)
            let y = randomArray(g.outputCount, seed: 33), slope: Float = 0.2
            let rectified = zip(gy, y).map { $1 > 0 ? $0 : $0 * slope }
            for useRectifier in [false, true] {
                var gw = [Float](repeating: .nan, count: g.weightCount), gb = [Float](repeating: .nan, count: g.cout)
                x.withUnsafeBufferPointer { xp in
                    gy.withUnsafeBufferPointer { gp in
                        y.withUnsafeBufferPointer { yp in
                            Convolution.backwardWeight(
                                g, inputs: ConvolutionSource(xp.baseAddress!, channels: g.cin, volume: g.inVoxels), gradOutput: gp.baseAddress!,
                                rectifiedBy: useRectifier ? Rectification(output: yp.baseAddress!, slope: slope) : nil,
                                gradWeight: &gw, gradBias: &gb)
                        }
                    }
                }
                let (ref, scale, refBias, biasScale) = ConvolutionReference.backwardWeight(g, x, useRectifier ? rectified : gy)
                assertWithinConvolutionRounding(gw, ref, scale, "Winograd weight gradient \(g), rectifier \(useRectifier)")
                assertWithinConvolutionRounding(gb, refBias, biasScale, "Winograd bias gradient \(g), rectifier \(useRectifier)")
            }
        }
    }

    func testWeightGradientIsTheSameOnEveryRunWithTheSameThreads() {
        let g = ConvGeometry.cubic(n: 1, cin: 16, cout: 16, size: (8, 10, 40), kernel: 3, stride: 1, padding: 1)
        let x = randomArray(g.inputCount, seed: 34), gy = randomArray(g.outputCount, seed: 35)
        var first = [Float](repeating: 0, count: g.weightCount)
        Convolution.backwardWeight(g, input: x, gradOutput: gy, gradWeight: &first, gradBias: nil)
        for _ in 0..<3 {
            var again = [Float](repeating: 0, count: g.weightCount)
            Convolution.backwardWeight(g, input: x, gradOutput: gy, gradWeight: &again, gradBias: nil)
            XCTAssertEqual(again, first)
        }
    }

    func testDataGradientOfAChannelRangeIsThatRangeOfTheWholeGradient() {
        let g = ConvGeometry.cubic(n: 2, cin: 20, cout: 9, size: (4, 5, 19), kernel: 3, stride: 1, padding: 1)
        let gy = randomArray(g.outputCount, seed: 27), w = randomArray(g.weightCount, seed: 28)
        var whole = [Float](repeating: .nan, count: g.inputCount)
        Convolution.backwardData(g, gradOutput: gy, weight: w, gradInput: &whole)
        let range = 3..<14
        var part = [Float](repeating: .nan, count: g.n * range.count * g.inVoxels)
        Convolution.backwardData(g, gradOutput: gy, weight: w, inputChannels: range, gradInput: &part)
        for n in 0..<g.n {
            for (k, c) in range.enumerated() {
                let a = Array(part[((n * range.count + k) * g.inVoxels)..<((n * range.count + k + 1) * g.inVoxels)])
                let b = Array(whole[((n * g.cin + c) * g.inVoxels)..<((n * g.cin + c + 1) * g.inVoxels)])
                XCTAssertEqual(a, b, "batch \(n) channel \(c)")
            }
        }
    }
}
