import Foundation
import MorphoIO
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// Ensembles average their members' probabilities on the input grid.
final class SegmentationEnsembleTests: XCTestCase {
    func testEnsembleOfOneModelIsThatModel() throws {
        let dir = try temporaryFolder("ensemble")
        try UntrainedCheckpoints.write(dims: 2, seed: 1, to: dir + "/a.safetensors")
        let image = try UntrainedCheckpoints.image(dims: 2)
        let a = try Segmenter(checkpoint: dir + "/a.safetensors")
        let direct = a.probabilities(try a.stackedInput([image], paths: ["image"]))
        for members in [[a], [a, a]] {
            let (labels, probs) = try SegmentationEnsemble(members: members).segment([image], paths: ["image"])
            XCTAssertEqual(probs.data, direct.data, "\(members.count) member(s)")
            XCTAssertEqual(labels.data, SlidingWindow.argmax(direct).data)
        }
    }

    func testEnsembleAveragesTheMembersProbabilities() throws {
        let dir = try temporaryFolder("ensemble")
        try UntrainedCheckpoints.write(dims: 2, seed: 1, to: dir + "/a.safetensors")
        try UntrainedCheckpoints.write(dims: 2, seed: 2, to: dir + "/b.safetensors")
        let image = try UntrainedCheckpoints.image(dims: 2)
        let ensemble = try SegmentationEnsemble(checkpoints: [dir + "/a.safetensors", dir + "/b.safetensors"])
        let raw = try ensemble.members[0].stackedInput([image], paths: ["image"])
        let pa = ensemble.members[0].probabilities(raw), pb = ensemble.members[1].probabilities(raw)
        XCTAssertNotEqual(pa.data, pb.data, "two seeds, two models")
        let (labels, probs) = try ensemble.segment([image], paths: ["image"])
        var worst: Float = 0
        for i in probs.data.indices { worst = nanStrictMax(worst, abs(probs.data[i] - (pa.data[i] + pb.data[i]) / 2)) }
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertEqual(labels.data, SlidingWindow.argmax(VoxelArray(probs)).data)
    }

    func testModelsWithDifferentClassesCannotBeEnsembled() throws {
        let dir = try temporaryFolder("ensemble")
        try UntrainedCheckpoints.write(dims: 2, seed: 1, to: dir + "/a.safetensors")
        try UntrainedCheckpoints.write(dims: 2, seed: 1, classes: 2, to: dir + "/b.safetensors")
        XCTAssertThrowsError(try SegmentationEnsemble(checkpoints: [dir + "/a.safetensors", dir + "/b.safetensors"])) {
            XCTAssertEqual(
                "\($0)",
                "\(dir)/b.safetensors: takes image and predicts 2 classes; \(dir)/a.safetensors takes image and predicts 3: they cannot be ensembled")
        }
    }
}
