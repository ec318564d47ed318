import Foundation
import MorphoIO
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// Planning a run from a dataset fingerprint: nnU-Net's rules, re-derived, and the config they give.
final class DatasetPlannerTests: XCTestCase {
    func fingerprint(spacings: [[Double]], shapes: [[Int]], channels: [String] = ["T1"], nonzero: Double = 1) -> DatasetFingerprint {
        var stats = DatasetFingerprint.IntensityStatistics([-100, 0, 40, 50, 60, 1000])
        stats.samples = 6
        return DatasetFingerprint(
            spacings: spacings, shapes: shapes, nonzeroBoxFractions: Array(repeating: nonzero, count: spacings.count),
            foregroundIntensities: Array(repeating: stats, count: channels.count), classVoxels: [1000, 100, 10],
            channels: channels, labels: ["background", "a", "b"])
    }

    func testTargetSpacingIsTheMedianOfEachAxis() {
        let (spacing, anisotropic) = DatasetPlanner.targetSpacing(
            spacings: [[1, 1, 1.2], [0.8, 0.9, 1], [1.2, 1, 1.5]], shapes: [[100, 100, 90], [120, 100, 100], [90, 90, 80]])
        XCTAssertEqual(spacing, [1, 1, 1.2])
        XCTAssertNil(anisotropic)
    }

    /// Thick slices (5–8 mm, 20 of them against 200 in-plane voxels): z takes the 10th percentile
    /// of its spacings, numpy's linear interpolation over [5, 5, 6, 7, 8] giving 5.
    func testAnisotropicThickSliceAxisTakesItsTenthPercentile() {
        let spacings = [5.0, 8, 6, 5, 7].map { [0.7, 0.7, $0] }
        let (spacing, anisotropic) = DatasetPlanner.targetSpacing(spacings: spacings, shapes: Array(repeating: [200, 200, 20], count: 5))
        XCTAssertEqual(anisotropic, 2)
        XCTAssertEqual(spacing[0], 0.7)
        XCTAssertEqual(spacing[2], 5, accuracy: 1e-9)
        // Thick but with as many slices as in-plane voxels: not anisotropic, the median stays.
        let many = DatasetPlanner.targetSpacing(spacings: spacings, shapes: Array(repeating: [200, 200, 200], count: 5))
        XCTAssertNil(many.anisotropicAxis)
        XCTAssertEqual(many.spacing[2], 6)
    }

    func testIsotropicVolumesGetA3DNetworkWhosePatchFitsItsDepth() throws {
        let fp = fingerprint(spacings: Array(repeating: [2, 2, 2], count: 6), shapes: Array(repeating: [90, 110, 90], count: 6))
        let plan = try DatasetPlanner.plan(fp, dataset: "/data/brains", name: "brains", budgetMinutes: 10) { _ in 0.5 }
        XCTAssertEqual(plan.dims, 3)
        XCTAssertEqual(plan.targetSpacing, [2, 2, 2])
        XCTAssertEqual(plan.medianShape, [90, 110, 90])
        // 64³ of equal extent, 4 poolings (64 / 2⁴ = 4 voxels at the bottom).
        XCTAssertEqual(plan.patch, [64, 64, 64])
        XCTAssertEqual(plan.channels, [16, 32, 64, 128, 128])
        XCTAssertEqual(plan.batchSize, 2)
        // 10 min · 60 · ¾ / 0.5 s = 900 steps: 50 per epoch, 18 epochs.
        XCTAssertEqual(plan.stepsPerEpoch, 50)
        XCTAssertEqual(plan.epochs, 18)
        let config = try RunConfig(yaml: plan.yaml)
        XCTAssertEqual(config.data.source, .dataset("/data/brains"))
        XCTAssertEqual(config.data.patch.size, [64, 64, 64])
        XCTAssertEqual(config.model.unet.strides, [2, 2, 2, 2])
        XCTAssertEqual(config.data.spacing, [2, 2, 2])
        XCTAssertEqual(config.training.epochs, 18)
        XCTAssertEqual(config.data.normalization.kind, .zscore)
        XCTAssertTrue(plan.yaml.contains("# Why each value:"))
        // Five folds (nnU-Net's), commented, with no fold chosen: train validates as configured.
        XCTAssertEqual(config.data.folds, 5)
        XCTAssertNil(config.data.fold)
        XCTAssertTrue(plan.yaml.contains("folds: 5   # `train --fold k`"))
    }

    /// `plan --budget`: with the same measured step time, a bigger budget buys proportionally
    /// more training steps (¾ of it), and the plan says how many and why.
    func testABiggerBudgetPlansMoreStepsAndSaysSo() throws {
        let fp = fingerprint(spacings: Array(repeating: [2, 2, 2], count: 12), shapes: Array(repeating: [90, 110, 90], count: 12))
        let plans = try [5.0, 20, 60].map { budget in
            try DatasetPlanner.plan(fp, dataset: "d", name: "d", budgetMinutes: budget) { _ in 0.25 }
        }
        let steps = plans.map { $0.epochs * $0.stepsPerEpoch }
        // 5 / 20 / 60 min · 60 s · ¾ / 0.25 s = 900 / 3600 / 10 800 steps, 50 per epoch.
        XCTAssertEqual(steps, [900, 3600, 10_800])
        XCTAssertEqual(plans.map(\.epochs), [18, 72, 216])
        XCTAssertEqual(Set(plans.map(\.patch)).count, 1, "a step time that does not depend on the patch: resizing it buys no steps, so it stays")
        for (plan, budget) in zip(plans, ["5", "20", "60"]) {
            let line = "\(plan.epochs) epochs × 50 steps: one training step (batch, loss, backward, update) took 0.25 s here, \(budget) min budget (¾ for steps)"
            XCTAssertTrue(plan.reasons.contains(line), "\(plan.reasons)")
            XCTAssertTrue(plan.yaml.contains("#   - " + line))
            XCTAssertTrue(plan.yaml.contains("epochs: \(plan.epochs)\n"))
        }
    }

    /// `plan --budget` scales the patch too: with a step time proportional to the patch's voxels
    /// (0.1 s at 64³), 2 minutes (900 steps at 64³) halve the patch until 2,500 steps fit, 20
    /// minutes keep the default, and 60 (27,000 steps, ≥ 20,000) double it; the plan says why.
    func testAShortBudgetShrinksThePatchAndALongOneGrowsIt() throws {
        let fp = fingerprint(spacings: Array(repeating: [2, 2, 2], count: 12), shapes: Array(repeating: [90, 110, 90], count: 12))
        var timed: [[Int]] = []
        let plans = try [2.0, 20, 60].map { budget in
            try DatasetPlanner.plan(fp, dataset: "d", name: "d", budgetMinutes: budget) { config in
                let patch = try XCTUnwrap(config.data.patch.size)
                timed.append(patch)
                return 0.1 * Double(patch.reduce(1, *)) / (64 * 64 * 64)
            }
        }
        XCTAssertEqual(plans.map(\.patch), [[40, 40, 40], [64, 64, 64], [80, 80, 80]])
        // 2 min: 64³ (900 steps) → 48³ (2,133) → 40³ (3,686); 60 min: 64³ (27,000) → 80³ (13,824).
        XCTAssertEqual(timed, [[64, 64, 64], [48, 48, 48], [40, 40, 40], [64, 64, 64], [64, 64, 64], [80, 80, 80]])
        XCTAssertEqual(plans.map { $0.epochs * $0.stepsPerEpoch }, [3_650, 9_000, 13_800])
        XCTAssertEqual(plans.map { $0.channels.count }, [4, 5, 5], "depth follows the patch: 3 poolings for 40³, 4 for 64³ and 80³")
        XCTAssertTrue(plans[0].reasons.contains { $0.hasPrefix("patch [40, 40, 40] voxels (x, y, z): 64³ ÷ 4 voxels")
            && $0.hasSuffix("; smaller than the default [64, 64, 64], whose 900 steps in the budget are fewer than the 2500 a U-Net needs") },
            "\(plans[0].reasons)")
        XCTAssertFalse(plans[1].reasons.contains { $0.contains("than the default") }, "\(plans[1].reasons)")
        XCTAssertTrue(plans[2].reasons.contains { $0.hasPrefix("patch [80, 80, 80] voxels (x, y, z): 64³ × 2 voxels")
            && $0.hasSuffix("; larger than the default [64, 64, 64], whose 27000 steps in the budget are more than 20000: more context per step") },
            "\(plans[2].reasons)")
        for plan in plans { XCTAssertEqual(try RunConfig(yaml: plan.yaml).data.patch.size, plan.patch) }
    }

    func testThickSlicesGiveA2DNetworkOnTheThinAxisAndCroppedImagesNormaliseOverNonzeroVoxels() throws {
        let spacings = [5.0, 8, 6, 5, 7].map { [0.7, 0.7, $0] }
        let fp = fingerprint(spacings: spacings, shapes: Array(repeating: [200, 180, 20], count: 5), nonzero: 0.5)
        let plan = try DatasetPlanner.plan(fp, dataset: "d", name: "d", budgetMinutes: 5) { _ in 0.2 }
        XCTAssertEqual(plan.dims, 2)
        XCTAssertEqual(plan.sliceAxis, .z)
        XCTAssertEqual(plan.patch.count, 2)
        XCTAssertTrue(plan.patch.allSatisfy { $0 % 32 == 0 && $0 <= 224 }, "\(plan.patch)")
        let config = try RunConfig(yaml: plan.yaml)
        XCTAssertEqual(config.model.unet.dims, 2)
        XCTAssertTrue(config.data.normalization.nonzero)
        XCTAssertEqual(config.data.augmentation.flip, [.x, .y])
    }

    func testCTIsClippedToForegroundPercentilesAndScaledByForegroundStatistics() throws {
        let fp = fingerprint(spacings: Array(repeating: [1, 1, 1], count: 3), shapes: Array(repeating: [64, 64, 64], count: 3), channels: ["CT"])
        let plan = try DatasetPlanner.plan(fp, dataset: "d", name: "d", budgetMinutes: 1) { _ in 0.1 }
        let n = try RunConfig(yaml: plan.yaml).data.normalization
        XCTAssertEqual(n.kind, .ct)
        let s = fp.foregroundIntensities[0]
        XCTAssertEqual(n.ct?.clip, s.percentile00_5...s.percentile99_5)
        XCTAssertEqual(n.ct?.mean, s.mean)
        var a = VoxelArray(data: [Float(s.percentile99_5) + 500, Float(s.mean)], channels: 1, shape: [1, 1, 2], spacing: [1, 1, 1])
        n.apply(to: &a)
        XCTAssertEqual(Double(a.data[0]), (s.percentile99_5 - s.mean) / s.std, accuracy: 1e-4)
        XCTAssertEqual(a.data[1], 0, accuracy: 1e-6)
    }

    func testFingerprintCountsClassesAndForegroundIntensities() throws {
        let root = try temporaryFolder("nnunet")
        try PhantomDatasetFolder.nnUNet(at: root, training: 3, channels: 2)
        let folder = try DatasetFolder.read(root)
        let fp = try DatasetFingerprint.extract(folder)
        XCTAssertEqual(fp.spacings, Array(repeating: [1, 1, 1], count: 3))
        XCTAssertEqual(fp.shapes, Array(repeating: [32, 32, 1], count: 3))
        var counts = [0, 0, 0], foreground: [Float] = []
        for c in folder.training {
            let image = try NIfTI.read(c.images[0]), label = try NIfTI.read(c.label!)
            for (i, l) in label.data.enumerated() {
                counts[Int(l)] += 1
                if l > 0 { foreground.append(image.data[i]) }
            }
        }
        XCTAssertEqual(fp.classVoxels, counts)
        XCTAssertLessThan(foreground.count, DatasetFingerprint.samplesPerCase)  // all of them are kept
        XCTAssertEqual(fp.foregroundIntensities[0].samples, foreground.count)
        let mean = foreground.map(Double.init).reduce(0, +) / Double(foreground.count)
        XCTAssertEqual(fp.foregroundIntensities[0].mean, mean, accuracy: 1e-5)
        XCTAssertEqual(fp.foregroundIntensities[1].mean, -mean, accuracy: 1e-5)
        XCTAssertEqual(fp.foregroundIntensities[0].max, Double(foreground.max()!))
        let json = try JSONSerialization.jsonObject(with: Data(fp.json.utf8)) as! [String: Any]
        XCTAssertEqual(json["class_voxels"] as? [Int], counts)
    }
}
