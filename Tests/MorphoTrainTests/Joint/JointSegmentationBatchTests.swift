import Foundation
import MorphoKernels
import MorphoTensor
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

/// `joint.segmentation_batch`: S labelled-only, augmented samples per step after the pairs in the
/// U-Net's input, entering the segmentation terms only.
final class JointSegmentationBatchTests: XCTestCase, TinyJointRun {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("joint-segbatch")
    }

    /// Row `r` of a batch tensor along N.
    func row(_ t: Tensor, _ r: Int) -> [Float] { Array(t.slice(axis: 0, r..<(r + 1)).scalars) }

    /// Without augmentation each of the S samples is one of the labelled training images, image
    /// and labels, stacked after the 2N pair rows as labelled rows; the batch counts them among
    /// its labelled images, and the pairs are the batch's pairs without them.
    func testSegmentationOnlySamplesAreLabelledTrainingImagesStackedAfterThePairs() throws {
        let task = try JointTask(config: config(labelled: 3, joint: "segmentation_batch: 3"))
        let plain = try JointTask(config: config(labelled: 3))
        let sources = task.dataset.images.filter { $0.labels != nil }
        XCTAssertEqual(sources.count, 3)
        for step in 0..<4 {
            let b = task.makeBatch(2, step), p = plain.makeBatch(2, step)
            XCTAssertEqual(b.images.shape[0], 2 * 2 + 3)
            XCTAssertEqual(b.segmentationRows, 3)
            XCTAssertEqual(Array(b.images.scalars.prefix(p.images.scalars.count)), p.images.scalars)
            XCTAssertEqual(b.labelledRows, p.labelledRows + [4, 5, 6])
            XCTAssertEqual(b.globalLabelled, p.globalLabelled + 3)
            for j in 0..<3 {
                let image = row(b.images, 4 + j), labels = row(b.labelledLabels, p.labelledCount + j)
                XCTAssertTrue(sources.contains { $0.image.data == image && $0.labels!.data == labels }, "step \(step) sample \(j)")
            }
        }
    }

    /// With augmentation every sample is augmented and keeps its maps consistent: mirrors only,
    /// so the carried distance maps are exactly those of the sample's mirrored labels.
    func testAugmentedSegmentationOnlySamplesCarryTheMapsOfTheirAugmentedLabels() throws {
        let task = try JointTask(config: config(labelled: 3, augmentation: "{flip: [x, y]}", joint: "segmentation_batch: 4"))
        let spacing = task.dataset.images[0].image.spacing
        var mirrored = 0
        let sources = task.dataset.images.filter { $0.labels != nil }.map(\.image.data)
        for step in 0..<3 {
            let b = task.makeBatch(9, step)
            for r in (b.labelledCount - 4)..<b.labelledCount {
                let labels = VoxelArray(data: row(b.labelledLabels, r), channels: 1, shape: [1, 32, 32], spacing: spacing)
                let expected = Subject.signedDistances(labels, classes: 3, sliceWise: true)
                let carried = row(b.labelledDistances, r)
                XCTAssertEqual(carried.count, expected.data.count)
                XCTAssertLessThanOrEqual(zip(carried, expected.data).reduce(0.0) { nanStrictMax($0, Double(abs($1.0 - $1.1))) }, 1e-5)
            }
            for j in 0..<4 where !sources.contains(row(b.images, 4 + j)) { mirrored += 1 }
        }
        XCTAssertGreaterThan(mirrored, 0, "some samples are mirrored")
    }

    /// The S samples change only the segmentation terms: similarity, smoothness and coupling of
    /// the batch equal those of the same batch without them (instance norm: a row's logits do not
    /// depend on the other rows), the regional term does not.
    func testSegmentationOnlySamplesEnterOnlyTheSegmentationTerms() throws {
        let task = try JointTask(config: config(labelled: 3, augmentation: strong, joint: "segmentation_batch: 3"))
        let plain = try JointTask(config: config(labelled: 3, augmentation: strong))
        try plain.network.load(Dictionary(uniqueKeysWithValues: task.network.stateDictionary()))
        let (a, b) = withoutGradients { (task.loss(task.makeBatch(4, 1), epoch: 0), plain.loss(plain.makeBatch(4, 1), epoch: 0)) }
        for name in a.terms.map(\.name) where !["dice_ce", "boundary", "prl"].contains(name) {
            XCTAssertEqual(Double(a[name]!.value), Double(b[name]!.value), accuracy: 1e-5, name)
        }
        XCTAssertNotEqual(a["dice_ce"]!.value, b["dice_ce"]!.value)
    }

    /// Sample j belongs to the shard that holds pair position j mod N: the shards' samples are
    /// the global batch's, each shard counts the global batch's labelled images.
    func testSegmentationOnlySamplesAreSplitOverShardsByPairPosition() throws {
        let task = try JointTask(config: config(labelled: 3, augmentation: strong, joint: "segmentation_batch: 3"))
        let whole = task.makeBatch(6, 3)
        let first = task.makeShard!(6, 3, [0]), second = task.makeShard!(6, 3, [1])
        XCTAssertEqual(first.segmentationRows, 2)
        XCTAssertEqual(second.segmentationRows, 1)
        XCTAssertEqual(row(first.images, 2) + row(first.images, 3), row(whole.images, 4) + row(whole.images, 6))
        XCTAssertEqual(row(second.images, 2), row(whole.images, 5))
        XCTAssertEqual(first.globalLabelled, whole.globalLabelled)
        XCTAssertEqual(second.globalLabelled, whole.globalLabelled)
        XCTAssertEqual(first.labelledCount + second.labelledCount, whole.labelledCount)
    }

    /// Without a labelled training image there is nothing to draw: refused naming the key.
    func testSegmentationBatchWithoutLabelledImagesIsRefused() throws {
        XCTAssertThrowsError(try JointTask(config: config(labelled: 0, joint: "segmentation_batch: 2"))) { error in
            XCTAssertTrue("\(error)".contains("joint.segmentation_batch"), "\(error)")
        }
        XCTAssertThrowsError(try config(joint: "segmentation_batch: -1")) { error in
            XCTAssertTrue("\(error)".contains("joint.segmentation_batch"), "\(error)")
        }
    }

    /// A resumed run with segmentation-only samples and shared pair augmentation (two loader
    /// threads) continues exactly: identical losses at every epoch; the samples change the run.
    func testResumedJointRunWithSegmentationSamplesMatchesAnUninterruptedOne() throws {
        let saved = Parallel.threads
        Parallel.threads = 1
        defer { Parallel.threads = saved }
        let c = try config(
            labelled: 3, epochs: 3, steps: 3, augmentation: strong, joint: "segmentation_batch: 2\n  pair_augmentation: shared", threads: 2)
        let full = try TrainingRun.run(.joint(c), output: tempDir + "/full", progress: quiet())
        _ = try TrainingRun.run(.joint(c), output: tempDir + "/cut", stopAfterEpoch: 1, progress: quiet())
        let resumed = try TrainingRun.run(.joint(c), output: tempDir + "/cut", resume: tempDir + "/cut/last.safetensors", progress: quiet())
        XCTAssertEqual(resumed.history.map(\.loss), full.history.map(\.loss))
        let without = try config(labelled: 3, epochs: 3, steps: 3, augmentation: strong, joint: "pair_augmentation: shared", threads: 2)
        let other = try TrainingRun.run(.joint(without), output: tempDir + "/other", progress: quiet())
        XCTAssertNotEqual(other.history.map(\.loss), full.history.map(\.loss))
    }
}
