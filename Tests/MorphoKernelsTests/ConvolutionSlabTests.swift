import XCTest
@testable import MorphoKernels

/// `ConvolutionSlab.fill` against the slab's definition, slot by slot: column slot `k`, row slot
/// `i` of phase `(ph, pw)` holds virtual source voxel `(y, u) = ((qh0 + i)·sH + ph − padH,
/// k·sW + pw − padW)`, which is source voxel `(y, u / dilation)` when dilation divides `u` and
/// it is inside the volume, else 0. The slab is zeroed once and then refilled in the order a
/// worker refills it (the ring over depth, slices outside the volume, other row blocks), so a
/// padding slot written by one fill and not cleared by the next would show up. Shapes: stride 1
/// and 2, widths not multiples of 16, of 8 to 16 and longer than 32 (the 16- and 8-lane copies
/// and gathers and their overlapping last vectors), the dilated rows of a stride-2 data
/// gradient, a rectified source.
final class ConvolutionSlabTests: XCTestCase {
    struct Case {
        var pass: ConvolutionPass
        var rows: Int
        var rectified: Bool
    }

    static var cases: [Case] {
        var out = [Case]()
        for (size, kernel, stride, padding) in [((5, 6, 7), 3, 1, 1), ((4, 9, 33), 3, 1, 1), ((5, 7, 70), 3, 2, 1),
                                                ((4, 6, 64), 3, 2, 1), ((3, 8, 35), 2, 2, 0), ((3, 5, 19), 3, 2, 2),
                                                ((3, 4, 16), 3, 1, 0), ((3, 4, 11), 3, 1, 1), ((3, 4, 9), 2, 1, 0),
                                                ((3, 5, 16), 3, 2, 1), ((3, 4, 32), 3, 2, 1), ((3, 5, 24), 3, 2, 1),
                                                ((3, 4, 12), 3, 2, 1), ((3, 4, 17), 3, 2, 0)] {
            let g = ConvGeometry.cubic(cin: 3, cout: 2, size: size, kernel: kernel, stride: stride, padding: padding)
            for rectified in [false, true] {
                out.append(Case(pass: Convolution.forwardPass(g), rows: 3, rectified: rectified))
            }
            guard stride > 1 else { continue }
            // The data gradient's W axis: gradOut rows dilated by the stride.
            let phases = Convolution.dataGradientPhases(g)
            let pass = ConvolutionPass(batch: 1, sourceChannels: g.cout, destinationChannels: g.cin,
                                       d: phases.d[0].axis, h: phases.h[0].axis, w: phases.w[0].axis)
            precondition(pass.w.dilation > 1, "a stride-2 data gradient dilates W")
            out.append(Case(pass: pass, rows: 2, rectified: false))
            out.append(Case(pass: pass, rows: 2, rectified: true))
        }
        return out
    }

    func testEveryFillMatchesTheSlabDefinitionAfterEarlierFills() {
        for testCase in Self.cases {
            let pass = testCase.pass
            let slab = ConvolutionSlab(pass, rows: testCase.rows)
            let volume = pass.sourceVolume
            let source = randomArray(pass.sourceChannels * volume, seed: 11)
            let sign = randomArray(pass.sourceChannels * volume, seed: 12)
            let slope: Float = 0.25
            var buffer = [Float](repeating: 0, count: slab.floats)
            var checkedVoxels = 0
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: pass.w.source)
            defer { scratch.deallocate() }
            source.withUnsafeBufferPointer { src in
                sign.withUnsafeBufferPointer { y in
                    let bases = (0..<pass.sourceChannels).map { src.baseAddress! + $0 * volume }
                    let signBases = (0..<pass.sourceChannels).map { y.baseAddress! + $0 * volume }
                    bases.withUnsafeBufferPointer { channels in
                        signBases.withUnsafeBufferPointer { signChannels in
                            let rectifier: (bases: UnsafePointer<UnsafePointer<Float>>, slope: Float, scratch: UnsafeMutablePointer<Float>)?
                                = testCase.rectified ? (bases: signChannels.baseAddress!, slope: slope, scratch: scratch) : nil
                            // Row blocks in turn, each walking the slices from before the first to past the last.
                            for qh0 in stride(from: 0, to: pass.h.grid, by: testCase.rows) {
                                for z in -2...(pass.d.source + 1) {
                                    buffer.withUnsafeMutableBufferPointer { b in
                                        slab.fill(pass, channels: channels.baseAddress!, z: z, qh0: qh0, into: b.baseAddress!,
                                                  rectifier: rectifier)
                                    }
                                    let (wrong, voxels) = mismatches(slab, pass, buffer, source, sign: testCase.rectified ? sign : nil,
                                                                     slope: slope, z: z, qh0: qh0)
                                    checkedVoxels += voxels
                                    XCTAssertEqual(wrong, 0, "\(pass) rows \(testCase.rows) rectified \(testCase.rectified) z \(z) qh0 \(qh0)")
                                }
                            }
                        }
                    }
                }
            }
            XCTAssertGreaterThan(checkedVoxels, pass.sourceChannels * volume / 2, "the fills hold the source: \(pass)")
        }
    }

    /// Slots of depth slot `slot(z)` that differ from the definition (exact comparison), and how
    /// many of its slots hold a source voxel.
    private func mismatches(_ slab: ConvolutionSlab, _ pass: ConvolutionPass, _ buffer: [Float], _ source: [Float],
                            sign: [Float]?, slope: Float, z: Int, qh0: Int) -> (wrong: Int, voxels: Int) {
        let (sh, sw, d) = (pass.h.stride, pass.w.stride, pass.w.dilation)
        var (wrong, voxels) = (0, 0)
        for c in 0..<pass.sourceChannels {
            for ph in 0..<sh {
                for pw in 0..<sw {
                    let base = c * slab.channelStride + slab.slot(z) * slab.sliceStride + (ph * sw + pw) * slab.block
                    for i in 0..<slab.rowSlots {
                        let y = (qh0 + i) * sh + ph - pass.h.pad
                        for k in 0..<slab.pitch {
                            let u = k * sw + pw - pass.w.pad
                            var expected: Float = 0
                            if z >= 0 && z < pass.d.source && y >= 0 && y < pass.h.source && u >= 0 && u % d == 0 && u / d < pass.w.source {
                                let at = ((c * pass.d.source + z) * pass.h.source + y) * pass.w.source + u / d
                                expected = source[at]
                                voxels += 1
                                if let sign { expected = sign[at] > 0 ? expected : slope * expected }
                            }
                            if buffer[base + i * slab.pitch + k] != expected { wrong += 1 }
                        }
                    }
                }
            }
        }
        return (wrong, voxels)
    }
}
