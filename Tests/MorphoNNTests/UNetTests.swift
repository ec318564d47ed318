import Foundation
import XCTest
import MorphoTensor
@testable import MorphoNN

final class UNetTests: XCTestCase {
    func testUNetHasMONAIsParameterCount() {
        // monai.networks.nets.UNet(channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=0),
        // 1 → 2 channels: 486 296 parameters in 3D and 162 296 in 2D (shared/bench/table.md).
        var rng = RandomGenerator(seed: 1)
        XCTAssertEqual(UNet(spatialRank: 3, inChannels: 1, outChannels: 2, rng: &rng).parameterCount, 486_296)
        XCTAssertEqual(UNet(spatialRank: 2, inChannels: 1, outChannels: 2, rng: &rng).parameterCount, 162_296)
    }

    func testResidualUNetHasMONAIsParameterCount() {
        // monai UNet(num_res_units=2), 3D, 1 → 2, widths (16, 32, 64, 128), counted layer by
        // layer as MONAI builds it: conv(i, o, k) = o·i·k³ + o, one PReLU slope per block,
        // instance norm without parameters.
        func conv(_ i: Int, _ o: Int, _ k: Int = 3) -> Int { o * i * k * k * k + o }
        func block(_ i: Int, _ o: Int) -> Int { conv(i, o) + 1 }
        let down0 = block(1, 16) + block(16, 16) + conv(1, 16)
        let down1 = block(16, 32) + block(32, 32) + conv(16, 32)
        let down2 = block(32, 64) + block(64, 64) + conv(32, 64)
        let bottom = block(64, 128) + block(128, 128) + conv(64, 128, 1)
        let up2 = block(192, 32) + block(32, 32)
        let up1 = block(64, 16) + block(16, 16)
        let up0 = block(32, 2) + conv(2, 2)
        var rng = RandomGenerator(seed: 1)
        let net = UNet(spatialRank: 3, inChannels: 1, outChannels: 2, residualUnits: 2, rng: &rng)
        XCTAssertEqual(net.parameterCount, down0 + down1 + down2 + bottom + up2 + up1 + up0)
    }

    /// A training pass (forward + backward) of a U-Net counts, layer by layer, 2·Cin·Cout·k³ per
    /// output voxel of each convolution (per input voxel of each transposed one) forward, the
    /// same for the weight gradient and again for the data gradient, except at the first layer,
    /// whose input (the image) needs none.
    func testUNetTrainingPassCountsTheSumOfItsLayersFLOPs() {
        var rng = RandomGenerator(seed: 3)
        let net = UNet(spatialRank: 3, inChannels: 1, outChannels: 2, channels: [4, 8, 16], strides: [2, 2], rng: &rng)
        let x = Tensor.randomNormal([1, 1, 8, 8, 8], using: &rng)
        func layer(_ cin: Int, _ cout: Int, voxels: Int) -> Double { 2 * Double(cin * cout * 27 * voxels) }
        let down0 = layer(1, 4, voxels: 4 * 4 * 4)      // 8³ → 4³, stride 2
        let down1 = layer(4, 8, voxels: 2 * 2 * 2)      // 4³ → 2³
        let bottom = layer(8, 16, voxels: 2 * 2 * 2)    // stride 1 at 2³
        let up1 = layer(8 + 16, 4, voxels: 2 * 2 * 2)   // transposed, from 2³ (skip + bottom)
        let up0 = layer(4 + 4, 2, voxels: 4 * 4 * 4)    // transposed, from 4³
        let forward = down0 + down1 + bottom + up1 + up0
        let (_, count) = FLOPCounting.count { net(x).squared().mean().backward() }
        XCTAssertEqual(count.forwardCalls, 5)
        XCTAssertEqual(count.forward, forward)
        XCTAssertEqual(count.weightGradient, forward)
        XCTAssertEqual(count.dataGradient, forward - down0)
        XCTAssertEqual(count.total, 3 * forward - down0)
    }

    func testResidualUNetKeepsTheInputSize() {
        var rng = RandomGenerator(seed: 2)
        let net = UNet(spatialRank: 3, inChannels: 1, outChannels: 3, channels: [4, 8, 8], residualUnits: 2, rng: &rng)
        let x = Tensor.randomNormal([1, 1, 9, 8, 11], using: &rng)
        XCTAssertEqual(withoutGradients { net(x) }.shape, [1, 3, 9, 8, 11])
        net(x).squared().mean().backward()
        XCTAssertTrue(net.parameters.allSatisfy { $0.grad != nil }, "every parameter takes part in the forward pass")
    }

    func testUNetNamesItsParametersStably() {
        var rng = RandomGenerator(seed: 1)
        let net = UNet(spatialRank: 2, inChannels: 1, outChannels: 3, channels: [4, 8, 16], rng: &rng)
        let names = net.namedParameters.map(\.0)
        XCTAssertEqual(Set(names).count, names.count, "parameter names must be unique")
        XCTAssertEqual(Array(names.prefix(3)), ["down.0.conv.weight", "down.0.conv.bias", "down.0.activation.slope"])
        XCTAssertTrue(names.contains("bottom.conv.weight"))
        XCTAssertEqual(names.filter { $0.hasPrefix("up.0.") }, ["up.0.conv.weight", "up.0.conv.bias"], "the top decoder is conv only")
        let shapes = Dictionary(uniqueKeysWithValues: net.namedParameters.map { ($0.0, $0.1.shape) })
        XCTAssertEqual(shapes["down.1.conv.weight"], [8, 4, 3, 3])
        XCTAssertEqual(shapes["up.0.conv.weight"], [8, 3, 3, 3], "the top decoder maps cat(4, 4) to 3 logits")
    }

    func testUNetKeepsTheInputSize2DAnd3D() {
        var rng = RandomGenerator(seed: 2)
        let net2 = UNet(spatialRank: 2, inChannels: 2, outChannels: 3, channels: [4, 8, 8], rng: &rng)
        let net3 = UNet(spatialRank: 3, inChannels: 1, outChannels: 2, channels: [4, 8, 8, 8], rng: &rng)
        withoutGradients {
            // Divisible by 2^levels and not.
            for spatial in [[16, 16], [23, 17], [5, 9]] {
                XCTAssertEqual(net2(Tensor.randomNormal([2, 2] + spatial, using: &rng)).shape, [2, 3] + spatial)
            }
            for spatial in [[16, 8, 16], [13, 10, 7]] {
                XCTAssertEqual(net3(Tensor.randomNormal([1, 1] + spatial, using: &rng)).shape, [1, 2] + spatial)
            }
        }
    }

    func testLoadingAStateDictionaryReproducesTheNetwork() throws {
        var rng = RandomGenerator(seed: 3)
        let a = UNet(spatialRank: 2, inChannels: 1, outChannels: 2, channels: [4, 8], norm: .batch, rng: &rng)
        let b = UNet(spatialRank: 2, inChannels: 1, outChannels: 2, channels: [4, 8], norm: .batch, rng: &rng)
        let x = Tensor.randomNormal([2, 1, 8, 8], using: &rng)
        _ = a(x)  // moves a's running statistics
        a.setTraining(false)
        b.setTraining(false)
        XCTAssertNotEqual(a(x).scalars, b(x).scalars)
        let state = a.stateDictionary()
        XCTAssertTrue(state.contains { $0.0 == "down.0.norm.running_mean" }, "buffers are saved")
        XCTAssertFalse(a.namedParameters.contains { $0.0.hasSuffix("running_mean") }, "buffers are not trained")
        try b.load(Dictionary(uniqueKeysWithValues: state))
        XCTAssertEqual(a(x).scalars, b(x).scalars)
    }

    func testLoadRefusesAnotherArchitecture() {
        var rng = RandomGenerator(seed: 4)
        let net = UNet(spatialRank: 2, inChannels: 1, outChannels: 2, channels: [4, 8], rng: &rng)
        var state = Dictionary(uniqueKeysWithValues: net.stateDictionary())
        state["down.0.conv.weight"] = Tensor.zeros([1])
        XCTAssertThrowsError(try net.load(state)) { XCTAssertEqual($0 as? ModuleError, .shapeMismatch("down.0.conv.weight", expected: [4, 1, 3, 3], found: [1])) }
        state.removeValue(forKey: "down.0.conv.weight")
        XCTAssertThrowsError(try net.load(state)) { XCTAssertEqual($0 as? ModuleError, .missingParameter("down.0.conv.weight")) }
    }

    func testFlatGradientsRoundTrip() {
        var rng = RandomGenerator(seed: 5)
        let net = UNet(spatialRank: 2, inChannels: 1, outChannels: 2, channels: [4, 8], rng: &rng)
        net(Tensor.randomNormal([1, 1, 8, 8], using: &rng)).squared().mean().backward()
        let flat = net.gatherGradients()
        XCTAssertEqual(flat.count, net.parameterCount)
        XCTAssertGreaterThan(flat.map(Swift.abs).max()!, 0)
        net.scatterGradients(flat.map { $0 * 2 })
        XCTAssertEqual(net.gatherGradients(), flat.map { $0 * 2 })
        let values = net.gatherParameters()
        net.scatterParameters(values.map { $0 + 1 })
        XCTAssertEqual(net.gatherParameters(), values.map { $0 + 1 })
    }

    /// Pixelwise cross-entropy of logits `[N, 2, H, W]` against a 0/1 mask `[N, 1, H, W]`.
    func crossEntropy(_ logits: Tensor, _ mask: Tensor) -> Tensor {
        let target = Tensor.concat([1 - mask, mask], axis: 1)
        return -(target * logits.logSoftmax()).sum() * (1 / Float(mask.count))
    }

    func testTinyUNetOverfitsAToySegmentation() {
        var rng = RandomGenerator(seed: 6)
        // Two noisy discs of different sizes; the label is the disc.
        let size = 24
        let mask = Tensor(shape: [2, 1, size, size]) { p in
            for n in 0..<2 { for y in 0..<size { for x in 0..<size {
                let (cy, cx, r) = n == 0 ? (10.0, 12.0, 6.0) : (14.0, 9.0, 4.0)
                p[(n * size + y) * size + x] = (Double(y) - cy) * (Double(y) - cy) + (Double(x) - cx) * (Double(x) - cx) < r * r ? 1 : 0
            } } }
        }
        let image = mask + Tensor.randomNormal(mask.shape, std: 0.3, using: &rng)
        let net = UNet(spatialRank: 2, inChannels: 1, outChannels: 2, channels: [8, 16, 32], rng: &rng)
        let adam = Adam(net.namedParameters, learningRate: 1e-2)
        let initial = withoutGradients { crossEntropy(net(image), mask).item }
        for _ in 0..<150 {
            let loss = crossEntropy(net(image), mask)
            loss.backward()
            adam.step()
            adam.zeroGrad()
        }
        let logits = withoutGradients { net(image) }
        let final = crossEntropy(logits, mask).item
        XCTAssertLessThan(final, initial * 0.05, "loss \(initial) → \(final)")
        var correct = 0
        for n in 0..<2 { for i in 0..<(size * size) {
            let fg = logits[flat: (n * 2 + 1) * size * size + i] > logits[flat: n * 2 * size * size + i]
            if fg == (mask[flat: n * size * size + i] == 1) { correct += 1 }
        } }
        XCTAssertGreaterThan(Double(correct) / Double(2 * size * size), 0.99)
    }

    /// Forward + backward + Adam of MONAI's (16, 32, 64, 128) U-Net on 1×1×64³ (the PyTorch
    /// baseline case). Set MORPHOSEG_TIMING=1 to run (MORPHOSEG_TIMING_SIZE=96 or 128 for the
    /// larger cases); prints the median wall time of 5 steps, their CPU time and the peak RSS.
    func testTimingOfA3DUNetTrainingStep() throws {
        guard ProcessInfo.processInfo.environment["MORPHOSEG_TIMING"] == "1" else { throw XCTSkip("timing runs with MORPHOSEG_TIMING=1") }
        let size = Int(ProcessInfo.processInfo.environment["MORPHOSEG_TIMING_SIZE"] ?? "64")!
        var rng = RandomGenerator(seed: 7)
        let net = UNet(spatialRank: 3, inChannels: 1, outChannels: 2, rng: &rng)
        let adam = Adam(net.namedParameters, learningRate: 1e-3)
        let mask = Tensor(shape: [1, 1, size, size, size]) { p in
            for i in 0..<(size * size * size) { p[i] = rng.uniform() < 0.3 ? 1 : 0 }
        }
        let image = mask + Tensor.randomNormal(mask.shape, std: 0.3, using: &rng)
        var times: [Double] = [], cpu: [Double] = []
        for _ in 0..<7 {
            let t0 = DispatchTime.now().uptimeNanoseconds, c0 = processCPUSeconds()
            let loss = crossEntropy(net(image), mask)
            loss.backward()
            adam.step()
            adam.zeroGrad()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            cpu.append((processCPUSeconds() - c0) * 1e3)
        }
        let median = times.dropFirst(2).sorted()[2]
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        print("UNet 3D (16,32,64,128) training step at \(size)³: median \(median) ms of \(times.dropFirst(2).map { Int($0) }), CPU \(cpu.dropFirst(cpu.count - 3).map { Int($0) }) ms (both cores), peak RSS \(usage.ru_maxrss / 1024) MB")
    }
}

/// CPU time used so far by all threads of this process, in seconds (wall time is meaningless
/// on a shared, loaded machine; CPU time is what the step costs).
func processCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
