import Foundation
import MorphoKernels
import MorphoLosses
import MorphoTensor
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

/// `data.augmentation` in joint training: every image augmented before pairing, on the loader,
/// with its label map, signed distance maps and PRL target fluxes kept consistent, and drawn
/// from the batch's seed stream.
final class JointAugmentationTests: XCTestCase, TinyJointRun {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("joint-aug")
    }

    /// Row `r` of a 2D batch tensor `[L, C, H, W]` as a `[C, 1, H, W]` array on the phantoms'
    /// pixel spacing.
    func row(_ t: Tensor, _ r: Int, spacing: [Double]) -> VoxelArray {
        let c = t.shape[1], h = t.shape[2], w = t.shape[3]
        return VoxelArray(data: Array(t.slice(axis: 0, r..<(r + 1)).scalars), channels: c, shape: [1, h, w], spacing: spacing)
    }

    /// The distance maps a batch carries for an augmented labelled image equal the maps computed
    /// from its augmented labels. With rotation/zoom the carried maps are the image's own maps
    /// resampled (linear, × zoom) while the labels are resampled nearest, so they agree within
    /// interpolation: |Δ| ≤ 1.5 mm (1.5 pixels of 1 mm) at every pixel within 3 mm of a boundary
    /// of the class, mean |Δ| ≤ 0.3 mm over those pixels (measured on these 4 batches: max 1.19 mm,
    /// mean 0.22 mm over 19 342 pixels). The PRL fluxes are recomputed from the
    /// augmented labels on the loader: equal exactly.
    func testAugmentedLabelledImagesMapsEqualTheMapsOfTheirAugmentedLabels() throws {
        let task = try JointTask(config: config(augmentation: strong))
        let plain = try JointTask(config: config())
        let prl = PhysicalRegularizationLoss(K: 0.5)
        let spacing = task.dataset.images[0].image.spacing
        var worst = 0.0, sum = 0.0, count = 0, changed = 0
        for step in 0..<4 {
            let batch = task.makeBatch(11, step)
            let reference = plain.makeBatch(11, step)
            XCTAssertEqual(batch.labelledRows, reference.labelledRows)
            if batch.labelledLabels.scalars != reference.labelledLabels.scalars { changed += 1 }
            for r in 0..<batch.labelledCount {
                let labels = row(batch.labelledLabels, r, spacing: spacing)
                let expected = Subject.signedDistances(labels, classes: 3, sliceWise: true)
                let carried = row(batch.labelledDistances, r, spacing: spacing)
                XCTAssertEqual(carried.data.count, expected.data.count)
                for i in expected.data.indices where abs(expected.data[i]) <= 3 {
                    let d = Double(abs(carried.data[i] - expected.data[i]))
                    worst = nanStrictMax(worst, d); sum += d; count += 1
                }
                let fluxes = JointTask.prlTargetFluxes(labels, prl, spatial: [32, 32])
                XCTAssertEqual(Array(batch.labelledFluxes.divI.slice(axis: 0, r..<(r + 1)).scalars), Array(fluxes[0..<1024]))
                XCTAssertEqual(Array(batch.labelledFluxes.divJ.slice(axis: 0, r..<(r + 1)).scalars), Array(fluxes[1024...]))
            }
        }
        XCTAssertEqual(changed, 4, "every batch's labels are augmented")
        XCTAssertGreaterThan(count, 1000)
        XCTAssertLessThanOrEqual(worst, 1.5)
        XCTAssertLessThanOrEqual(sum / Double(count), 0.3)
    }

    /// Mirrors alone move no pixel off the grid: the carried maps are exactly those of the
    /// mirrored labels.
    func testMirroredLabelledImagesMapsEqualTheMapsOfTheirMirroredLabelsExactly() throws {
        let task = try JointTask(config: config(augmentation: "{flip: [x, y]}"))
        let spacing = task.dataset.images[0].image.spacing
        for step in 0..<3 {
            let batch = task.makeBatch(5, step)
            for r in 0..<batch.labelledCount {
                let expected = Subject.signedDistances(row(batch.labelledLabels, r, spacing: spacing), classes: 3, sliceWise: true)
                XCTAssertEqual(nanStrictMaxDifference(row(batch.labelledDistances, r, spacing: spacing).data, expected.data), 0, accuracy: 1e-5)
            }
        }
    }

    func nanStrictMaxDifference(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0.0) { nanStrictMax($0, Double(abs($1.0 - $1.1))) }
    }

    /// A batch is a pure function of (seed, step): the same batch from another task instance,
    /// each shard the matching pairs of the global batch (so every rank and every loader thread
    /// draws the same augmentations), a different step different draws; images of an unaugmented
    /// run's pairs are the same images before augmentation (the pair draw is unchanged).
    func testAugmentedBatchesArePureFunctionsOfSeedAndStep() throws {
        let c = try config(augmentation: strong)
        let a = try JointTask(config: c), b = try JointTask(config: c)
        let x = a.makeBatch(3, 5), y = b.makeBatch(3, 5)
        XCTAssertEqual(x.images.scalars, y.images.scalars)
        XCTAssertEqual(x.labelledDistances.scalars, y.labelledDistances.scalars)
        let shard = a.makeShard!(3, 5, [1])
        XCTAssertEqual(shard.moving.scalars, Array(x.moving.slice(axis: 0, 1..<2).scalars))
        XCTAssertEqual(shard.fixed.scalars, Array(x.fixed.slice(axis: 0, 1..<2).scalars))
        XCTAssertNotEqual(a.makeBatch(3, 6).images.scalars, x.images.scalars)
        let plain = try JointTask(config: config()).makeBatch(3, 5)
        XCTAssertEqual(plain.movingLabelled, x.movingLabelled)
        XCTAssertNotEqual(plain.images.scalars, x.images.scalars)
    }

    /// Validation pairs are never augmented.
    func testValidationPairsAreNotAugmented() throws {
        let a = try JointTask(config: config(augmentation: strong)), b = try JointTask(config: config())
        XCTAssertEqual(a.dataset.validation.map(\.fixed.image.data), b.dataset.validation.map(\.fixed.image.data))
        let rows = try a.validate(), plainRows = try b.validate()
        XCTAssertEqual(rows.first { $0.name == "reg_dice_before" }!.value, plainRows.first { $0.name == "reg_dice_before" }!.value)
    }

    /// A resumed augmented run (two loader threads) draws the same augmentations as an
    /// uninterrupted one: identical losses at every epoch.
    func testResumedAugmentedJointRunMatchesAnUninterruptedOne() throws {
        let saved = Parallel.threads
        Parallel.threads = 1
        defer { Parallel.threads = saved }
        let c = try config(labelled: 3, epochs: 3, steps: 3, augmentation: strong, threads: 2)
        let full = try TrainingRun.run(.joint(c), output: tempDir + "/full", progress: quiet())
        _ = try TrainingRun.run(.joint(c), output: tempDir + "/cut", stopAfterEpoch: 1, progress: quiet())
        let resumed = try TrainingRun.run(.joint(c), output: tempDir + "/cut", resume: tempDir + "/cut/last.safetensors", progress: quiet())
        XCTAssertEqual(resumed.history.map(\.loss), full.history.map(\.loss))
        let plain = try TrainingRun.run(.joint(try config(labelled: 3, epochs: 3, steps: 3)), output: tempDir + "/plain", progress: quiet())
        XCTAssertNotEqual(plain.history.map(\.loss), full.history.map(\.loss))
    }
}
