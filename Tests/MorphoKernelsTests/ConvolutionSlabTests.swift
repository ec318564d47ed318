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

    /// The phases of a strided data gradient share one slab laid out for their envelope
    /// (`PolyphasePass`): tap `(c, jd, jh, jw)` of every phase, at every grid position of the
    /// phase, reads from the envelope's slab (offset table of the slice, filled the way a worker
    /// fills it) the value the phase's own pass defines, `source[c, qd + jd − padD, qh + jh −
    /// padH, qw + jw − padW]` (dilated along W where W is one pass), 0 outside. Shapes: kernel
    /// 3 with padding 1 (the phases' windows start together), padding 0 and 2 (they do not),
    /// kernel 2, odd sizes (phase grids one apart), W by parity phases and as one dilated pass.
    func testEveryPhaseReadsItsOwnTapsFromTheEnvelopeSlab() {
        let saved = Convolution.parityPhasesAlongWFromChannels
        defer { Convolution.parityPhasesAlongWFromChannels = saved }
        var checked = 0
        for threshold in [1, Int.max] {
            Convolution.parityPhasesAlongWFromChannels = threshold
            for (size, kernel, padding) in [((7, 9, 11), 3, 1), ((8, 7, 10), 3, 0), ((9, 6, 13), 3, 2), ((6, 8, 9), 2, 0),
                                            ((5, 5, 35), 3, 1)] {
                let g = ConvGeometry.cubic(cin: 2, cout: 3, size: size, kernel: kernel, stride: 2, padding: padding)
                let polyphase = Convolution.dataGradientPass(g, inputChannels: g.cin).polyphase
                XCTAssertEqual(polyphase.phases.count, threshold == 1 ? 8 : 4, "\(g)")
                checked += phaseMismatches(polyphase, rows: 2, g)
            }
        }
        XCTAssertGreaterThan(checked, 0)
    }

    /// Asserts every phase tap read matches its definition; returns how many reads were checked.
    private func phaseMismatches(_ polyphase: PolyphasePass, rows: Int, _ g: ConvGeometry,
                                 file: StaticString = #filePath, line: UInt = #line) -> Int {
        let envelope = polyphase.envelope
        let slab = ConvolutionSlab(envelope, rows: rows)
        let (srcD, srcH, srcW) = (envelope.d.source, envelope.h.source, envelope.w.source)
        let source = randomArray(envelope.sourceChannels * srcD * srcH * srcW, seed: 13)
        let tables = polyphase.phases.map { slab.tapOffsets($0.pass, shift: $0.shift) }
        var buffer = [Float](repeating: 0, count: slab.floats)
        var loaded = [Int](repeating: Int.min, count: slab.depthSlots)
        var (checked, wrong) = (0, 0)
        source.withUnsafeBufferPointer { src in
            let bases = (0..<envelope.sourceChannels).map { src.baseAddress! + $0 * srcD * srcH * srcW }
            bases.withUnsafeBufferPointer { channels in
                for qh0 in stride(from: 0, to: envelope.h.grid, by: rows) {
                    for s in 0..<slab.depthSlots { loaded[s] = Int.min }
                    for qd in 0..<envelope.d.grid {
                        for jd in 0..<envelope.d.taps {
                            let z = qd * envelope.d.stride + jd - envelope.d.pad
                            if loaded[slab.slot(z)] != z {
                                buffer.withUnsafeMutableBufferPointer { b in
                                    slab.fill(envelope, channels: channels.baseAddress!, z: z, qh0: qh0, into: b.baseAddress!)
                                }
                                loaded[slab.slot(z)] = z
                            }
                        }
                        for (p, phase) in polyphase.phases.enumerated() where qd < phase.pass.d.grid {
                            let pass = phase.pass
                            let offsets = tables[p][(slab.table(forSlice: qd, envelope) * pass.reduction)...]
                            var t = offsets.startIndex
                            for c in 0..<pass.sourceChannels {
                                for jd in 0..<pass.d.taps {
                                    for jh in 0..<pass.h.taps {
                                        for jw in 0..<pass.w.taps {
                                            let offset = offsets[t]
                                            t += 1
                                            for ql in 0..<Swift.min(rows, pass.h.grid - qh0) {
                                                for qw in 0..<pass.w.grid {
                                                    let z = qd * pass.d.stride + jd - pass.d.pad
                                                    let y = (qh0 + ql) * pass.h.stride + jh - pass.h.pad
                                                    let u = qw * pass.w.stride + jw - pass.w.pad
                                                    let x = u / pass.w.dilation
                                                    var expected: Float = 0
                                                    if z >= 0 && z < srcD && y >= 0 && y < srcH && u >= 0 && u % pass.w.dilation == 0 && x < srcW {
                                                        expected = source[((c * srcD + z) * srcH + y) * srcW + x]
                                                    }
                                                    if buffer[offset + ql * slab.pitch + qw] != expected { wrong += 1 }
                                                    checked += 1
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        XCTAssertEqual(wrong, 0, "phase reads of \(g) with \(polyphase.phases.count) phases", file: file, line: line)
        return checked
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
