import Foundation
import XCTest
import MorphoTensor
@testable import MorphoNN

final class DisplacementNetTests: XCTestCase {
    func testDisplacementNetHasVoxelMorphsParameterCount() {
        // The classic VxmDense layout of the PyTorch baselines: 327 331 parameters in 3D and
        // 109 170 in 2D (shared/bench/table.md).
        var rng = RandomGenerator(seed: 1)
        XCTAssertEqual(DisplacementNet(spatialRank: 3, rng: &rng).parameterCount, 327_331)
        XCTAssertEqual(DisplacementNet(spatialRank: 2, rng: &rng).parameterCount, 109_170)
    }

    func testDisplacementNetOutputsAFieldOfTheInputSize() {
        var rng = RandomGenerator(seed: 2)
        let small = (encoder: [4, 8, 8, 8], decoder: [8, 8, 8, 8, 8, 4, 4])
        withoutGradients {
            for (rank, spatial) in [(2, [32, 32]), (2, [37, 21]), (3, [16, 16, 16]), (3, [19, 17, 22])] {
                for (steps, half) in [(0, false), (7, false), (5, true)] {
                    let net = DisplacementNet(spatialRank: rank, encoderWidths: small.encoder, decoderWidths: small.decoder,
                                              integrationSteps: steps, halfResolution: half, rng: &rng)
                    let x = Tensor.randomNormal([2, 2] + spatial, using: &rng)
                    XCTAssertEqual(net(x).shape, [2, rank] + spatial, "rank \(rank) \(spatial) steps \(steps) half \(half)")
                }
            }
        }
    }

    func testInitialDisplacementIsAlmostZero() {
        var rng = RandomGenerator(seed: 3)
        let net = DisplacementNet(spatialRank: 2, rng: &rng)
        let flow = withoutGradients { net(moving: Tensor.randomUniform([1, 1, 32, 32], using: &rng), fixed: Tensor.randomUniform([1, 1, 32, 32], using: &rng)) }
        XCTAssertLessThan(max(flow.maxValue, -flow.minValue), 1e-2)
        XCTAssertEqual(net.flow.bias!.value.scalars, [0, 0])
    }

    func testNamesFollowTheLayout() {
        var rng = RandomGenerator(seed: 4)
        let names = DisplacementNet(spatialRank: 3, rng: &rng).namedParameters.map(\.0)
        XCTAssertEqual(names.first, "encoder.0.conv.weight")
        XCTAssertTrue(names.contains("decoder.3.conv.bias"))
        XCTAssertTrue(names.contains("remaining.2.conv.weight"))
        XCTAssertEqual(names.suffix(2), ["flow.weight", "flow.bias"])
    }

    func testRegistrationOfAShiftedDiscReducesTheMismatch() {
        // moving = a disc, fixed = the same disc 2 voxels further along x; a few Adam steps on
        // MSE(warp(moving, flow), fixed) + a small smoothness term must shrink the mismatch.
        var rng = RandomGenerator(seed: 5)
        let size = 32
        func disc(_ cx: Double) -> Tensor {
            Tensor(shape: [1, 1, size, size]) { p in
                for y in 0..<size { for x in 0..<size {
                    let r = ((Double(y) - 16) * (Double(y) - 16) + (Double(x) - cx) * (Double(x) - cx)).squareRoot()
                    p[y * size + x] = Float(1 / (1 + Foundation.exp((r - 7) * 1.5)))
                } }
            }
        }
        let moving = disc(14), fixed = disc(16)
        let net = DisplacementNet(spatialRank: 2, encoderWidths: [8, 16, 16, 16], decoderWidths: [16, 16, 16, 16, 16, 8, 8], rng: &rng)
        let transformer = SpatialTransformer()
        let adam = Adam(net.namedParameters, learningRate: 1e-3)
        func mismatch(_ flow: Tensor) -> Tensor { (transformer(moving, flow: flow) - fixed).squared().mean() }
        let initial = withoutGradients { mismatch(net(moving: moving, fixed: fixed)).item }
        for _ in 0..<60 {
            let flow = net(moving: moving, fixed: fixed)
            let dx = flow.slice(axis: 3, 1..<size) - flow.slice(axis: 3, 0..<(size - 1))
            let dy = flow.slice(axis: 2, 1..<size) - flow.slice(axis: 2, 0..<(size - 1))
            let loss = mismatch(flow) + 0.01 * (dx.squared().mean() + dy.squared().mean())
            loss.backward()
            adam.step()
            adam.zeroGrad()
        }
        let final = withoutGradients { mismatch(net(moving: moving, fixed: fixed)).item }
        XCTAssertLessThan(final, initial * 0.3, "mismatch \(initial) → \(final)")
    }

    /// Forward + backward + Adam of the default 3D DisplacementNet on one 80×96×80 pair with an
    /// MSE image term (the PyTorch baseline's registration case uses NCC; the network is the
    /// same). Set MORPHOSEG_TIMING=1 to run; prints the median of 3 steps.
    func testTimingOfA3DRegistrationStep() throws {
        guard ProcessInfo.processInfo.environment["MORPHOSEG_TIMING"] == "1" else { throw XCTSkip("timing runs with MORPHOSEG_TIMING=1") }
        var rng = RandomGenerator(seed: 8)
        let net = DisplacementNet(spatialRank: 3, rng: &rng)
        let adam = Adam(net.namedParameters, learningRate: 1e-4)
        let moving = Tensor.randomUniform([1, 1, 80, 96, 80], using: &rng), fixed = Tensor.randomUniform([1, 1, 80, 96, 80], using: &rng)
        let transformer = SpatialTransformer()
        var times: [Double] = [], cpu: [Double] = []
        for _ in 0..<4 {
            let t0 = DispatchTime.now().uptimeNanoseconds, c0 = processCPUSeconds()
            let flow = net(moving: moving, fixed: fixed)
            let loss = (transformer(moving, flow: flow) - fixed).squared().mean()
            loss.backward()
            adam.step()
            adam.zeroGrad()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            cpu.append((processCPUSeconds() - c0) * 1e3)
        }
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        print("DisplacementNet 3D training step at 80×96×80: median \(times.dropFirst().sorted()[1]) ms of \(times.dropFirst().map { Int($0) }), CPU \(cpu.dropFirst(cpu.count - 3).map { Int($0) }) ms (both cores), peak RSS \(usage.ru_maxrss / 1024) MB")
    }
}
