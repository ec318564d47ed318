import Foundation
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
import MorphoTestSupport
@testable import MorphoTrain

/// `model.unet.deep_supervision` and `model.unet.residual_units` in segmentation runs.
final class DeepSupervisionTests: XCTestCase {
    func config(unet extra: String = "deep_supervision: true", channels: String = "[4, 8, 8, 8, 8]") throws -> RunConfig {
        try RunConfig(yaml: """
            name: ds
            model:
              unet: {dims: 2, channels: \(channels), classes: 3, \(extra)}
            data:
              phantom: {size: [32, 32], count: 3}
              patch: {size: [32, 32]}
              threads: 1
            loss: {regional: dice_ce, boundary: {enabled: false}}
            training: {epochs: 1, steps_per_epoch: 1, batch_size: 2, seed: 5}
            """)
    }

    func testLossAtInitialisationIsTheWeightedSumOverResolutionsByHand() throws {
        let c = try config()
        let task = try SegmentationTask(config: c)
        let batch = task.makeBatch(7, 0)
        let value = withoutGradients { task.loss(batch, epoch: 0) }
        let loss = value.total.item
        XCTAssertEqual(Double(value["dice_ce"]!.value), Double(loss), accuracy: 1e-6, "the regional term is the whole loss here")

        // By hand: 4 levels give outputs at 1, 1/2 and 1/4 of the patch (level 3, nnU-Net's
        // weight-0 output, has no head); weights 1, 1/2, 1/4 normalised by their sum 7/4.
        let outs = withoutGradients { task.network.deepSupervisionLogits(batch.images) }
        XCTAssertEqual(outs.count, 3)
        let weights = [1.0, 0.5, 0.25].map { $0 / 1.75 }
        let f = DiceCELoss(includeBackground: c.loss.includeBackground)
        var expected = 0.0
        for (i, logits) in outs.enumerated() {
            let factor = 1 << i
            let (n, h, w) = (batch.labels.shape[0], logits.shape[2], logits.shape[3])
            var labels = [Float]()
            for b in 0..<n {
                for y in 0..<h {
                    for x in 0..<w { labels.append(batch.labels[flat: b * 32 * 32 + (y * factor) * 32 + x * factor]) }
                }
            }
            let target = Tensor(shape: [n, 1, h, w], data: labels)
            expected += weights[i] * Double(withoutGradients { f(logits: logits, labels: target).item })
        }
        XCTAssertEqual(Double(loss), expected, accuracy: 1e-5 * abs(expected))
        // Not the full-resolution loss alone.
        let top = Double(withoutGradients { f(logits: outs[0], labels: batch.labels).item })
        XCTAssertGreaterThan(abs(top - expected), 1e-3)
    }

    func testTrainingAFewStepsOnAPhantomLowersTheDeeplySupervisedLoss() throws {
        let task = try SegmentationTask(config: try config())
        let batch = task.makeBatch(7, 0)
        let adam = Adam(task.network.namedParameters, learningRate: 0.01)
        var losses: [Float] = []
        for _ in 0..<15 {
            task.network.zeroGrad()
            let l = task.loss(batch, epoch: 0).total
            losses.append(l.item)
            l.backward()
            adam.step()
        }
        XCTAssertTrue(losses.allSatisfy(\.isFinite), "\(losses)")
        XCTAssertLessThan(losses.last!, 0.8 * losses.first!, "\(losses)")
        // The heads learn too: every parameter has a gradient.
        XCTAssertTrue(task.network.parameters.allSatisfy { $0.grad != nil })
    }

    func testDeeplySupervisedCheckpointRoundTripsAndInfersFromTheFullResolutionHead() throws {
        for extra in ["deep_supervision: true", "deep_supervision: true, residual_units: 2"] {
            let c = try config(unet: extra)
            XCTAssertEqual(try RunConfig(yaml: c.yaml), c, "the resolved config keeps the keys")
            let net = makeUNet(c)
            let path = try temporaryFolder("ds") + "/model.safetensors"
            try Checkpoint(
                config: c, epoch: 0, rngState: [1, 2, 3, 4], bestScore: 0, bestEpoch: 0, staleValidations: 0,
                model: net.stateDictionary(), optimizer: []
            ).write(to: path)
            let segmenter = try Segmenter(checkpoint: path)
            XCTAssertEqual(segmenter.network.heads.count, net.heads.count)
            let loaded = Dictionary(uniqueKeysWithValues: segmenter.network.stateDictionary())
            for (name, t) in net.stateDictionary() { XCTAssertEqual(loaded[name]?.scalars, t.scalars, "\(extra): \(name)") }
            var rng = RandomGenerator(seed: 3)
            let x = Tensor.randomNormal([1, 1, 32, 32], using: &rng)
            net.setTraining(false)
            let expected = withoutGradients { net.deepSupervisionLogits(x)[0] }
            XCTAssertEqual(withoutGradients { segmenter.network(x) }.scalars, expected.scalars, extra)
        }
    }

    func testDefaultConfigBuildsTodaysNetworkAndItsCheckpointStillLoads() throws {
        // No new key: the resolved config (what a checkpoint embeds) is the one written before
        // the options existed, and the network is UNet's plain constructor, weight for weight.
        let c = try config(unet: "norm: instance", channels: "[4, 8, 16]")
        XCTAssertFalse(c.yaml.contains("residual_units"))
        XCTAssertFalse(c.yaml.contains("deep_supervision"))
        let net = makeUNet(c)
        var rng = SeedStream.generator(seed: c.training.seed, 0x554E_4554)
        let plain = UNet(spatialRank: 2, inChannels: 1, outChannels: 3, channels: [4, 8, 16], strides: [2, 2],
                         norm: .instance, activation: .leakyRelu(0.01), rng: &rng)
        XCTAssertEqual(net.stateDictionary().map(\.0), plain.stateDictionary().map(\.0))
        for ((name, a), (_, b)) in zip(net.stateDictionary(), plain.stateDictionary()) { XCTAssertEqual(a.scalars, b.scalars, name) }

        let path = try temporaryFolder("default") + "/model.safetensors"
        try Checkpoint(
            config: c, epoch: 0, rngState: [1, 2, 3, 4], bestScore: 0, bestEpoch: 0, staleValidations: 0,
            model: plain.stateDictionary(), optimizer: []
        ).write(to: path)
        let segmenter = try Segmenter(checkpoint: path)
        var xr = RandomGenerator(seed: 8)
        let x = Tensor.randomNormal([1, 1, 24, 20], using: &xr)
        plain.setTraining(false)
        XCTAssertEqual(withoutGradients { segmenter.network(x) }.scalars, withoutGradients { plain(x) }.scalars)
    }
}
