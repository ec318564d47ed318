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

    func testUNetNamesItsParametersStably() {
        var rng = RandomGenerator(seed: 1)
        let net = UNet(spatialRank: 2, inChannels: 1, outChannels: 3, channels: [4, 8, 16], rng: &rng)
        let names = net.namedParameters.map(\.0)
        XCTAssertEqual(Set(names).count, names.count, "parameter names must be unique")
        XCTAssertEqual(Array(names.prefix(3)), ["down.0.conv.weight", "down.0.conv.bias", "down.0.activation.slope"])
        XCTAssertTrue(names.contains("bottom.conv.weight"))
        XCTAssertEqual(names.filter { $0.hasPrefix("up.0.") }, ["up.0.conv.weight", "up.0.conv.bias"], "the top decoder is conv only")
        XCTAssertEqual(net.down[1].conv.weight.shape, [8, 4, 3, 3])
        XCTAssertEqual(net.up[0].conv.weight.shape, [8, 3, 3, 3], "the top decoder maps cat(4, 4) to 3 logits")
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
    /// baseline case). Set MORPHOSEG_TIMING=1 to run; prints the median of 5 steps.
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
        var times: [Double] = []
        for _ in 0..<7 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let loss = crossEntropy(net(image), mask)
            loss.backward()
            adam.step()
            adam.zeroGrad()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        let median = times.dropFirst(2).sorted()[2]
        print("UNet 3D (16,32,64,128) training step at \(size)³: median \(median) ms of \(times.dropFirst(2).map { Int($0) })")
    }
}
