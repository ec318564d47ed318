import Foundation
import MorphoIO
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// Checkpoint files: what they hold and what they refuse.
final class CheckpointTests: XCTestCase, TinySegmentationRun {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("trainer")
    }

    func testCheckpointRoundTripsWeightsStateAndMetadata() throws {
        let config = try phantomConfig(epochs: 1)
        let net = makeUNet(config)
        var rng = RandomGenerator(seed: 5)
        _ = rng.next()
        let optimizerState = [("down.0.conv.weight.exp_avg", Tensor.randomNormal([8, 1, 3, 3], using: &rng))]
        var ckpt = Checkpoint(
            config: config, epoch: 7, rngState: rng.stateWords, bestScore: 0.875, bestEpoch: 5, staleValidations: 2,
            model: net.stateDictionary(), optimizer: optimizerState)
        ckpt.extraMetadata = ["registration": "window: 9", "epoch": "ignored: reserved"]
        let path = tempDir + "/c.safetensors"
        try ckpt.write(to: path)
        let back = try Checkpoint.read(path)
        XCTAssertEqual(back.config, config)
        XCTAssertEqual(back.epoch, 7)
        XCTAssertEqual(back.rngState, rng.stateWords)
        XCTAssertEqual(back.bestScore, 0.875)
        XCTAssertEqual(back.bestEpoch, 5)
        XCTAssertEqual(back.staleValidations, 2)
        XCTAssertEqual(back.extraMetadata, ["registration": "window: 9"])
        for (name, t) in net.stateDictionary() {
            XCTAssertEqual(back.model[name]?.shape, t.shape, name)
            XCTAssertEqual(back.model[name]?.scalars, t.scalars, name)
        }
        XCTAssertEqual(back.optimizer["down.0.conv.weight.exp_avg"]?.scalars, optimizerState[0].1.scalars)
        // Loading into a fresh network of the same architecture restores it.
        var other = config
        other.training.seed = 99
        let fresh = makeUNet(other)
        XCTAssertNotEqual(fresh.stateDictionary()[0].1.scalars, net.stateDictionary()[0].1.scalars)
        try back.load(into: fresh, path: path)
        XCTAssertEqual(fresh.stateDictionary()[0].1.scalars, net.stateDictionary()[0].1.scalars)
        // The file is plain safetensors: 8-byte header length, JSON with string metadata.
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let n = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as! [String: Any]
        let meta = header["__metadata__"] as! [String: String]
        XCTAssertEqual(meta["format"], "morphoseg-checkpoint")
        XCTAssertEqual(meta["epoch"], "7")
        XCTAssertNotNil(header["model.down.0.conv.weight"])
    }

    func testCheckpointOfAnotherArchitectureIsRefusedNamingTheParameter() throws {
        let config = try phantomConfig(epochs: 1)
        let ckpt = Checkpoint(
            config: config, epoch: 1, rngState: [1, 2, 3, 4], bestScore: 0, bestEpoch: 1, staleValidations: 0,
            model: makeUNet(config).stateDictionary(), optimizer: [])
        var wider = config
        wider.model.unet.channels = [8, 16, 64]
        XCTAssertThrowsError(try ckpt.load(into: makeUNet(wider), path: "x.safetensors")) { error in
            XCTAssertTrue("\(error)".hasPrefix("x.safetensors: tensor model."), "\(error)")
        }
        XCTAssertThrowsError(try Checkpoint.read(tempDir + "/none.safetensors")) { error in
            XCTAssertEqual("\(error)", "\(tempDir)/none.safetensors: no such file")
        }
    }
}
