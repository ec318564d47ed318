import Foundation
import MorphoTensor
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

/// `joint.pair_augmentation`: whether a pair's two images are augmented independently, with one
/// shared draw, or not at all.
final class JointPairAugmentationTests: XCTestCase, TinyJointRun {

    /// A task whose training images all carry the first one's pixels (ids and labels kept), so
    /// every unaugmented pair is two equal images.
    func equalImagesTask(_ mode: String) throws -> JointTask {
        let c = try config(labelled: 3, augmentation: strong, joint: "pair_augmentation: \(mode)")
        var dataset = try RegistrationDataset.load(c.registrationRun)
        for i in dataset.images.indices { dataset.images[i].image = dataset.images[0].image }
        return try JointTask(config: c, dataset: dataset)
    }

    /// `shared`: one draw per pair, so two equal images stay equal after augmentation (rotation,
    /// zoom, mirrors and intensity alike); `independent`: they differ.
    func testSharedPairAugmentationAppliesOneTransformToBothImagesOfAPair() throws {
        let shared = try equalImagesTask("shared"), independent = try equalImagesTask("independent")
        var differing = 0
        for step in 0..<4 {
            let s = shared.makeBatch(1, step), i = independent.makeBatch(1, step)
            XCTAssertEqual(s.moving.scalars, s.fixed.scalars, "step \(step)")
            XCTAssertNotEqual(s.moving.scalars, shared.dataset.images[0].image.data, "step \(step): augmented")
            if i.moving.scalars != i.fixed.scalars { differing += 1 }
        }
        XCTAssertEqual(differing, 4)
    }

    /// `shared` keeps each image's maps consistent: a labelled image's carried distance maps are
    /// those of its own augmented labels (as under `independent`; mirrors only, so exactly).
    func testSharedPairAugmentationKeepsEachImagesMapsConsistent() throws {
        let task = try JointTask(config: config(labelled: 4, augmentation: "{flip: [x, y]}", joint: "pair_augmentation: shared"))
        let spacing = task.dataset.images[0].image.spacing
        var rows = 0
        for step in 0..<4 {
            let b = task.makeBatch(8, step)
            for r in 0..<b.labelledCount {
                let labels = VoxelArray(
                    data: Array(b.labelledLabels.slice(axis: 0, r..<(r + 1)).scalars), channels: 1, shape: [1, 32, 32], spacing: spacing)
                let expected = Subject.signedDistances(labels, classes: 3, sliceWise: true).data
                let carried = Array(b.labelledDistances.slice(axis: 0, r..<(r + 1)).scalars)
                XCTAssertLessThanOrEqual(zip(carried, expected).reduce(0.0) { nanStrictMax($0, Double(abs($1.0 - $1.1))) }, 1e-5)
                rows += 1
            }
        }
        XCTAssertGreaterThan(rows, 0)
    }

    /// `none`: the pairs are those of the unaugmented run, only the segmentation-only samples
    /// are augmented.
    func testNoPairAugmentationLeavesThePairsAndAugmentsOnlyTheSegmentationSamples() throws {
        let task = try JointTask(config: config(labelled: 3, augmentation: strong, joint: "pair_augmentation: none\n  segmentation_batch: 2"))
        let plain = try JointTask(config: config(labelled: 3, joint: "segmentation_batch: 2"))
        for step in 0..<3 {
            let b = task.makeBatch(5, step), p = plain.makeBatch(5, step)
            XCTAssertEqual(b.moving.scalars, p.moving.scalars)
            XCTAssertEqual(b.fixed.scalars, p.fixed.scalars)
            XCTAssertNotEqual(Array(b.images.scalars.suffix(2 * 1024)), Array(p.images.scalars.suffix(2 * 1024)), "step \(step)")
        }
    }

    /// The two keys are read, echoed in the resolved YAML and read back; an unknown mode is
    /// refused naming its key.
    func testSegmentationBatchAndPairAugmentationKeysRoundTripThroughTheResolvedConfig() throws {
        let c = try config(augmentation: "{flip: [x]}", joint: "segmentation_batch: 8\n  pair_augmentation: shared")
        XCTAssertEqual(c.joint.segmentationBatch, 8)
        XCTAssertEqual(c.joint.pairAugmentation, .shared)
        XCTAssertEqual(try JointRunConfig(yaml: c.yaml), c)
        XCTAssertEqual(try config().joint.pairAugmentation, .independent)
        XCTAssertEqual(try config().joint.segmentationBatch, 0)
        XCTAssertThrowsError(try config(joint: "pair_augmentation: both")) { error in
            XCTAssertTrue("\(error)".contains("joint.pair_augmentation"), "\(error)")
        }
    }
}
