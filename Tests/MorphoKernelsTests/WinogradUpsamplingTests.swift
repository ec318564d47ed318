import XCTest
@testable import MorphoKernels

/// `Convolution.forward(upsampling:…)`, `backwardDataOfUpsampledPart` and
/// `backwardWeight(upsampling:…)`: a convolution of
/// `[nearest ×2 up-sampling of coarse, skip]`, which Winograd layers compute on the coarse grid
/// both ways (WinogradUpsampling.swift), against the float64 definition on the up-sampled,
/// concatenated input (and its gradient summed back). Shapes cut the coarse
/// rows at both ends of a 16-tile segment, in the middle of one and not at all; batches of
/// several items; 2D and 3D; and grids the coarse path does not take (not exactly ×2, too
/// thin for Winograd), which build the up-sampled part instead.
final class WinogradUpsamplingTests: XCTestCase {
    private var saved = (0, 0, 0)
    private var savedEnabled = true
    override func setUp() {
        saved = (WinogradConvolution.minimumChannels, WinogradConvolution.minimumPlanarChannels, WinogradConvolution.minimumTiles)
        (WinogradConvolution.minimumChannels, WinogradConvolution.minimumPlanarChannels, WinogradConvolution.minimumTiles) = (8, 8, 1)
        savedEnabled = WinogradConvolution.enabled
        WinogradConvolution.enabled = true
    }
    override func tearDown() {
        (WinogradConvolution.minimumChannels, WinogradConvolution.minimumPlanarChannels, WinogradConvolution.minimumTiles) = saved
        WinogradConvolution.enabled = savedEnabled
    }

    /// (geometry of the convolution on the fine grid, coarse channels, coarse extent, whether the
    /// coarse-grid transform takes it).
    static let cases: [(ConvGeometry, Int, SpatialExtent, Bool)] = [
        // Coarse rows of 20: segments of 16 + 4 tiles, both through the edge staging.
        (.cubic(n: 2, cin: 9 + 8, cout: 13, size: (6, 8, 40), kernel: 3, stride: 1, padding: 1), 9, SpatialExtent(d: 3, h: 4, w: 20), true),
        // Coarse rows of 40: a segment read in place between two at the edges.
        (.cubic(n: 1, cin: 16 + 5, cout: 8, size: (4, 6, 80), kernel: 3, stride: 1, padding: 1), 16, SpatialExtent(d: 2, h: 3, w: 40), true),
        // Coarse rows of 32: both segments full, their outer neighbours by lane shifts (left of
        // the first, right of the second), the inner ones read in place.
        (.cubic(n: 1, cin: 8 + 6, cout: 8, size: (4, 4, 64), kernel: 3, stride: 1, padding: 1), 8, SpatialExtent(d: 2, h: 2, w: 32), true),
        // One coarse voxel per axis.
        (.cubic(n: 3, cin: 8 + 2, cout: 9, size: (2, 2, 2), kernel: 3, stride: 1, padding: 1), 8, SpatialExtent(d: 1, h: 1, w: 1), true),
        (.planar(n: 3, cin: 12 + 9, cout: 10, size: (14, 36), kernel: 3, stride: 1, padding: 1), 12, SpatialExtent(h: 7, w: 18), true),
        // Not exactly ×2 (5 from 3, 10 from 5): built, then the ordinary Winograd pass.
        (.cubic(n: 2, cin: 9 + 8, cout: 7, size: (5, 8, 10), kernel: 3, stride: 1, padding: 1), 9, SpatialExtent(d: 3, h: 4, w: 5), false),
        // Too thin for Winograd: built, then the direct kernels.
        (.cubic(n: 1, cin: 3 + 2, cout: 4, size: (4, 6, 8), kernel: 3, stride: 1, padding: 1), 3, SpatialExtent(d: 2, h: 3, w: 4), false),
    ]

    /// The reference's input `[N, Cin, grid]`: each item's coarse channels up-sampled (nearest),
    /// then its skip channels.
    static func concatenation(_ g: ConvGeometry, coarse: [Float], channels: Int, extent: SpatialExtent, grid: SpatialExtent,
                              skip: [Float]) -> [Float] {
        var up = [Float](repeating: 0, count: g.n * channels * g.inVoxels)
        resize(coarse, extent: extent, into: &up, newExtent: grid, planes: g.n * channels, linear: false)
        let skipChannels = g.cin - channels
        var x = [Float]()
        for n in 0..<g.n {
            x += up[(n * channels * g.inVoxels)..<((n + 1) * channels * g.inVoxels)]
            x += skip[(n * skipChannels * g.inVoxels)..<((n + 1) * skipChannels * g.inVoxels)]
        }
        return x
    }

    func testForwardEqualsTheDefinitionOnTheUpsampledConcatenationWithAndWithoutTheRectifier() {
        for (g, coarseChannels, extent, coarsePath) in Self.cases {
            let grid = g.inputExtent(rank: extent.rank)
            let plan = WinogradConvolution.Plan(g, sourceChannels: g.cin, destinationChannels: g.cout)
            let skipChannels = g.cin - coarseChannels
            let coarse = randomArray(g.n * coarseChannels * extent.count, seed: 41)
            let fits = coarse.withUnsafeBufferPointer {
                WinogradConvolution.UpsampledPart(base: $0.baseAddress!, channels: coarseChannels, extent: extent).fits(plan)
            }
            XCTAssertEqual(fits && WinogradConvolution.applies(g, sourceChannels: g.cin, destinationChannels: g.cout), coarsePath, "\(g)")
            let skip = randomArray(g.n * skipChannels * g.inVoxels, seed: 42)
            let w = randomArray(g.weightCount, seed: 43), b = randomArray(g.cout, seed: 44)
            let x = Self.concatenation(g, coarse: coarse, channels: coarseChannels, extent: extent, grid: grid, skip: skip)
            for slope in [nil, Float(0.2)] {
                var y = [Float](repeating: .nan, count: g.outputCount)
                skip.withUnsafeBufferPointer { sp in
                    Convolution.forward(g, upsampling: coarse, coarseChannels: coarseChannels, coarseExtent: extent,
                                        skip: ConvolutionSource(sp.baseAddress!, channels: skipChannels, volume: g.inVoxels),
                                        weight: w, bias: b, output: &y, rectifierSlope: slope)
                }
                let (linear, scale) = ConvolutionReference.forward(g, x, w, b)
                let ref = slope.map { s in linear.map { $0 > 0 ? $0 : Double(s) * $0 } } ?? linear
                assertWithinConvolutionRounding(y, ref, scale, "up-sampled forward \(g) from \(extent), slope \(String(describing: slope))")
            }
        }
    }

    func testDataGradientOfTheUpsampledPartIsTheDefinitionsSummedOntoTheCoarseGrid() {
        for (g, coarseChannels, extent, coarsePath) in Self.cases {
            let grid = g.inputExtent(rank: extent.rank)
            let plan = WinogradConvolution.Plan(g, sourceChannels: g.cout, destinationChannels: coarseChannels)
            XCTAssertEqual(WinogradConvolution.UpsampledPart.fits(extent, plan)
                           && WinogradConvolution.applies(g, sourceChannels: g.cout, destinationChannels: coarseChannels), coarsePath, "\(g)")
            let gy = randomArray(g.outputCount, seed: 45), w = randomArray(g.weightCount, seed: 46)
            // Channels 1 ..< 1 + k of the concatenation: a range that does not start at 0.
            let channels = 1 ..< coarseChannels
            var got = [Float](repeating: .nan, count: g.n * channels.count * extent.count)
            Convolution.backwardDataOfUpsampledPart(g, gradOutput: gy, weight: w, inputChannels: channels, coarseExtent: extent,
                                                    gradCoarse: &got)
            // The definition's gradient of every fine voxel, summed onto the coarse voxel the
            // nearest up-sampling reads it from (found by up-sampling the coarse indices).
            let (fine, fineScale) = ConvolutionReference.backwardData(g, gy, w)
            var index = [Float](repeating: 0, count: grid.count)
            resize((0..<extent.count).map(Float.init), extent: extent, into: &index, newExtent: grid, planes: 1, linear: false)
            var want = [Double](repeating: 0, count: got.count), scale = want
            for n in 0..<g.n {
                for (k, c) in channels.enumerated() {
                    for i in 0..<grid.count {
                        let at = (n * channels.count + k) * extent.count + Int(index[i])
                        want[at] += fine[(n * g.cin + c) * grid.count + i]
                        scale[at] += fineScale[(n * g.cin + c) * grid.count + i]
                    }
                }
            }
            assertWithinConvolutionRounding(got, want, scale, "up-sampled part's data gradient \(g) onto \(extent)")
        }
    }

    func testWeightGradientEqualsTheDefinitionOnTheUpsampledConcatenation() {
        for (g, coarseChannels, extent, coarsePath) in Self.cases {
            let grid = g.inputExtent(rank: extent.rank)
            let skipChannels = g.cin - coarseChannels
            let coarse = randomArray(g.n * coarseChannels * extent.count, seed: 47)
            let skip = randomArray(g.n * skipChannels * g.inVoxels, seed: 48), gy = randomArray(g.outputCount, seed: 49)
            let x = Self.concatenation(g, coarse: coarse, channels: coarseChannels, extent: extent, grid: grid, skip: skip)
            var gw = [Float](repeating: .nan, count: g.weightCount), gb = [Float](repeating: .nan, count: g.cout)
            skip.withUnsafeBufferPointer { sp in
                let source = ConvolutionSource(sp.baseAddress!, channels: skipChannels, volume: g.inVoxels)
                // The 3D Winograd weight gradient takes the coarse grid; 2D has none.
                XCTAssertEqual(WinogradConvolution.appliesToWeightGradient(g, source: source), coarsePath && g.kernel.d == 3, "\(g)")
                Convolution.backwardWeight(g, upsampling: coarse, coarseChannels: coarseChannels, coarseExtent: extent, skip: source,
                                           gradOutput: gy, gradWeight: &gw, gradBias: &gb)
            }
            let (want, scale, wantBias, biasScale) = ConvolutionReference.backwardWeight(g, x, gy)
            assertWithinConvolutionRounding(gw, want, scale, "up-sampled weight gradient \(g) from \(extent)")
            assertWithinConvolutionRounding(gb, wantBias, biasScale, "up-sampled bias gradient \(g)")
        }
    }

    func testTheUpsampledPartIsZeroAtEveryTransformPointWithAnIndexTwo() {
        // Bᵀ(a, b, b, c) = (a − b, 2b, 0, b − c): 37 of 64 points in 3D, 7 of 16 in 2D.
        XCTAssertEqual((0..<64).filter { WinogradConvolution.UpsampledPart.isZeroPoint($0, deep: true) }.count, 37)
        XCTAssertEqual((0..<16).filter { WinogradConvolution.UpsampledPart.isZeroPoint($0, deep: false) }.count, 7)
        XCTAssertEqual(WinogradConvolution.inputButterfly(Float(1.5), 4, 4, -2).2, 0)
        XCTAssertEqual(WinogradConvolution.inputButterfly(Float(1.5), 4, 4, -2).1, 8)
    }
}
