import Foundation
import MorphoIO
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain

/// One joint step: its batches, shards, loss terms and where their gradients go.
final class JointTaskTests: XCTestCase, TinyJointRun {
    /// Sum of |grad| over the parameters of `module` (0 when none has a gradient).
    func gradientMass(_ module: any Module) -> Double {
        module.parameters.reduce(0.0) { acc, p in acc + (p.grad.map { Double($0.abs().sum().item) } ?? 0) }
    }

    func testOneJointStepSendsGradientsIntoBothNetworks() throws {
        let task = try JointTask(config: config())
        let batch = task.makeBatch(7, 0)
        XCTAssertEqual(batch.phase, .both)
        let value = task.loss(batch, epoch: 0)
        XCTAssertEqual(value.terms.map(\.name), ["lcc", "grad_l2", "dice_ce", "boundary", "prl", "coupling"])
        XCTAssertTrue(value.terms.allSatisfy { $0.value.isFinite })
        value.total.backward()
        XCTAssertGreaterThan(gradientMass(task.network.segmentation), 0)
        XCTAssertGreaterThan(gradientMass(task.network.registration), 0)
    }

    /// The PRL term reads the labelled images' target fluxes from the batch (computed once per
    /// labelled image): it equals PRL against the label maps themselves.
    func testPRLTermFromTheBatchsTargetFluxesEqualsPRLOfTheLabelMaps() throws {
        let task = try JointTask(config: config())
        let batch = task.makeBatch(7, 0)
        let flags = batch.movingLabelled + batch.fixedLabelled
        let labelled = flags.indices.filter { flags[$0] }
        XCTAssertFalse(labelled.isEmpty)
        let (term, expected) = withoutGradients {
            let term = task.loss(batch, epoch: 0)["prl"]!.value
            let probs = task.network.segmentation(batch.images).softmax()
            let prediction = 1 - JointTask.rows(probs, labelled).slice(axis: 1, 0..<1)
            let labels = JointTask.rows(Tensor.concat([batch.movingLabels, batch.fixedLabels], axis: 0), labelled)
            let target = 1 - oneHot(labels, class: 0)
            return (term, Double(PhysicalRegularizationLoss(K: 0.5)(prediction: prediction, target: target).item))
        }
        XCTAssertGreaterThan(expected, 0)
        XCTAssertEqual(Double(term), expected, accuracy: 1e-5 * expected)
    }

    /// With both images labelled, the coupling term (its warp shared with the image's) is the Dice
    /// of the warped one-hot moving labels and the fixed ones: registration's semi-supervised Dice.
    func testCouplingTermOfLabelledPairsIsTheDiceOfTheWarpedOneHotLabels() throws {
        let task = try JointTask(config: config())
        let batch = task.makeBatch(5, 0)
        XCTAssertEqual(batch.movingLabelled + batch.fixedLabelled, [true, true, true, true])
        let (term, expected) = withoutGradients {
            let term = task.loss(batch, epoch: 0)["coupling"]!.value
            let flow = task.network.registration(moving: batch.moving, fixed: batch.fixed)
            let warped = warp(foregroundOneHot(batch.movingLabels, classes: 3), flow)
            return (term, ProbabilityDiceLoss(smooth: 1e-5)(warped, foregroundOneHot(batch.fixedLabels, classes: 3)).item)
        }
        XCTAssertGreaterThan(expected, 0)
        XCTAssertEqual(term, expected, accuracy: 1e-5)
    }

    func testCouplingTermAloneReachesBothNetworks() throws {
        // Only the coupling term weighted: both networks still get gradients (through the warp of
        // the moving segmentation and through the U-Net's predictions on unlabelled images).
        let c = try config(labelled: 0, prl: 0, extra: "")
        var joint = c
        joint.registration.similarityWeight = WeightConfig(0)
        joint.registration.smoothnessWeight = WeightConfig(0)
        let task = try JointTask(config: joint)
        let value = task.loss(task.makeBatch(3, 0), epoch: 0)
        XCTAssertEqual(value["dice_ce"]?.value, 0)  // no labelled image
        XCTAssertGreaterThan(try XCTUnwrap(value["coupling"]).value, 0)
        value.total.backward()
        XCTAssertGreaterThan(gradientMass(task.network.segmentation), 0)
        XCTAssertGreaterThan(gradientMass(task.network.registration), 0)
    }

    /// `joint.coupling.detach_segmentation: true`: the same coupling value, but the U-Net's
    /// probabilities are constants of the step, so only the displacement network gets a gradient.
    func testCouplingWithDetachedSegmentationTrainsTheDisplacementNetworkOnly() throws {
        func task(detach: Bool) throws -> JointTask {
            var c = try config(labelled: 0, prl: 0)
            c.joint.couplingDetachSegmentation = detach
            c.registration.similarityWeight = WeightConfig(0)
            c.registration.smoothnessWeight = WeightConfig(0)
            return try JointTask(config: c)
        }
        let detached = try task(detach: true), attached = try task(detach: false)
        XCTAssertTrue(detached.config.joint.couplingDetachSegmentation)
        XCTAssertFalse(attached.config.joint.couplingDetachSegmentation)
        try attached.network.load(Dictionary(uniqueKeysWithValues: detached.network.stateDictionary()))
        let value = detached.loss(detached.makeBatch(3, 0), epoch: 0)
        let reference = withoutGradients { attached.loss(attached.makeBatch(3, 0), epoch: 0) }
        XCTAssertGreaterThan(try XCTUnwrap(value["coupling"]).value, 0)
        XCTAssertEqual(try XCTUnwrap(value["coupling"]).value, try XCTUnwrap(reference["coupling"]).value, accuracy: 1e-6)
        value.total.backward()
        XCTAssertEqual(gradientMass(detached.network.segmentation), 0)
        XCTAssertGreaterThan(gradientMass(detached.network.registration), 0)
        XCTAssertEqual(try JointRunConfig(yaml: detached.config.yaml), detached.config)
        XCTAssertTrue(detached.config.yaml.contains("detach_segmentation: true"))
    }

    func testAlternatingPhasesTrainOneNetworkAtATime() throws {
        let task = try JointTask(config: config(strategy: "alternating"))
        let phases = (0..<6).map { task.makeBatch(1, $0).phase }
        XCTAssertEqual(phases, [.registration, .registration, .segmentation, .segmentation, .registration, .registration])
        let reg = task.loss(task.makeBatch(1, 0), epoch: 0)
        reg.total.backward()
        XCTAssertGreaterThan(gradientMass(task.network.registration), 0)
        XCTAssertEqual(gradientMass(task.network.segmentation), 0)
        task.network.zeroGrad()
        let seg = task.loss(task.makeBatch(1, 2), epoch: 0)
        seg.total.backward()
        XCTAssertGreaterThan(gradientMass(task.network.segmentation), 0)
        XCTAssertEqual(gradientMass(task.network.registration), 0)
        // The same terms are reported in both phases.
        XCTAssertEqual(reg.terms.map(\.name), seg.terms.map(\.name))
    }

    func testPartialLabelsKeepOnlyTheFirstImagesLabelled() throws {
        let task = try JointTask(config: config(labelled: 2))
        XCTAssertEqual(task.dataset.images.count, 8)
        XCTAssertEqual(task.dataset.images.filter { $0.labels != nil }.count, 2)
        XCTAssertEqual(task.distanceCache.count, 2)
        // Over many batches both labelled and unlabelled images appear; every loss is finite and
        // the segmentation terms are 0 exactly when no image of the batch is labelled.
        var sawUnlabelled = false, sawLabelled = false
        for step in 0..<12 {
            let b = task.makeBatch(11, step)
            let flags = b.movingLabelled + b.fixedLabelled
            sawUnlabelled = sawUnlabelled || flags.contains(false)
            sawLabelled = sawLabelled || flags.contains(true)
            let v = withoutGradients { task.loss(b, epoch: 0) }
            XCTAssertTrue(v.terms.allSatisfy { $0.value.isFinite }, "\(v.terms)")
            XCTAssertEqual(v["dice_ce"]!.value == 0, !flags.contains(true))
        }
        XCTAssertTrue(sawUnlabelled && sawLabelled)
    }

    func testBatchStacksImagesOneHotsAndLabelledTargetsInMovingThenFixedOrder() throws {
        let task = try JointTask(config: config(labelled: 3))
        var checked = 0
        for step in 0..<12 {
            let b = task.makeBatch(17, step)
            // The U-Net's input and the coupling's one-hot sides come with the batch.
            XCTAssertEqual(b.images.scalars, Tensor.concat([b.moving, b.fixed], axis: 0).scalars)
            XCTAssertEqual(b.movingForeground.scalars, foregroundOneHot(b.movingLabels, classes: 3).scalars)
            XCTAssertEqual(b.fixedForeground.shape, [2, 2, 32, 32])
            XCTAssertEqual(b.fixedForeground.scalars, foregroundOneHot(b.fixedLabels, classes: 3).scalars)
            let rows = b.labelledRows
            XCTAssertEqual(rows, (b.movingLabelled + b.fixedLabelled).indices.filter { (b.movingLabelled + b.fixedLabelled)[$0] })
            guard !rows.isEmpty else {
                XCTAssertEqual(b.labelledLabels.shape, [], "no labelled image: a scalar 0")
                continue
            }
            let all = Tensor.concat([b.movingLabels, b.fixedLabels], axis: 0)
            let voxels = all.spatialCount
            XCTAssertEqual(b.labelledLabels.shape, [rows.count, 1, 32, 32])
            XCTAssertEqual(b.labelledDistances.shape, [rows.count, 3, 32, 32])
            XCTAssertEqual(b.labelledFluxes.divI.shape, [rows.count, 1, 32, 32])
            XCTAssertEqual(b.labelledFluxes.divJ.shape, [rows.count, 1, 32, 32])
            for (j, r) in rows.enumerated() {
                let labels = Array(all.scalars[(r * voxels)..<((r + 1) * voxels)])
                XCTAssertEqual(Array(b.labelledLabels.scalars[(j * voxels)..<((j + 1) * voxels)]), labels)
                // The image this row came from, by its label map: its cached distance maps and fluxes.
                let image = try XCTUnwrap(task.dataset.images.first { $0.labels?.data == labels })
                XCTAssertEqual(Array(b.labelledDistances.scalars[(j * 3 * voxels)..<((j + 1) * 3 * voxels)]), task.distanceCache[image.id]!.data)
                let fluxes = task.fluxCache[image.id]!
                XCTAssertEqual(Array(b.labelledFluxes.divI.scalars[(j * voxels)..<((j + 1) * voxels)]), Array(fluxes[..<voxels]))
                XCTAssertEqual(Array(b.labelledFluxes.divJ.scalars[(j * voxels)..<((j + 1) * voxels)]), Array(fluxes[voxels...]))
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 4)
    }

    func testShardsOfABatchAreItsPairsAndCountTheWholeBatchsLabelledImages() throws {
        let task = try JointTask(config: config(labelled: 3))
        for step in 0..<6 {
            let whole = task.makeBatch(13, step)
            XCTAssertEqual(whole.globalPairs, 2)
            XCTAssertEqual(whole.globalLabelled, whole.labelledCount)
            let shards = [[0], [1]].map { task.makeShard!(13, step, $0) }
            for (k, shard) in shards.enumerated() {
                XCTAssertEqual(shard.moving.scalars, whole.moving.slice(axis: 0, k..<(k + 1)).scalars)
                XCTAssertEqual(shard.fixed.scalars, whole.fixed.slice(axis: 0, k..<(k + 1)).scalars)
                XCTAssertEqual(shard.movingLabelled + shard.fixedLabelled, [whole.movingLabelled[k], whole.fixedLabelled[k]])
                XCTAssertEqual(shard.globalPairs, 2)
                XCTAssertEqual(shard.globalLabelled, whole.labelledCount, "each shard knows the whole batch's labelled images")
            }
        }
    }
}
