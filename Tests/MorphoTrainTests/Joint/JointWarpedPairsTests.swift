import Foundation
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

/// `joint.warped_pairs`: labelled moving images warped with their labels by their pair's field
/// (detached), as extra exact image–label samples of the U-Net.
final class JointWarpedPairsTests: XCTestCase, TinyJointRun {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("joint-warped-pairs")
    }

    func gradientMass(_ module: any Module) -> Double {
        module.parameters.reduce(0.0) { acc, p in acc + (p.grad.map { Double($0.abs().sum().item) } ?? 0) }
    }

    /// Row `r` of a batch tensor along N.
    func row(_ t: Tensor, _ r: Int) -> Tensor { t.slice(axis: 0, r..<(r + 1)) }

    /// A task with 3 of 8 training images labelled and the term on (`extra` extra pairs), and a
    /// batch with at least one pair whose moving image is labelled.
    func taskAndBatch(extra: Int = 0, seed: UInt64 = 1) throws -> (JointTask, JointBatch) {
        let task = try JointTask(config: config(labelled: 3, joint: "warped_pairs: {weight: 0.5, extra: \(extra)}"))
        for step in 0..<50 {
            let b = task.makeBatch(seed, step)
            if b.movingLabelled.contains(true) { return (task, b) }
        }
        throw XCTSkip("no batch with a labelled moving image")
    }

    /// The sources are the pairs' labelled moving images, in pair order, with their one-hot
    /// foreground labels; the global W counts them.
    func testSourcesAreThePairsLabelledMovingImagesWithTheirLabels() throws {
        let (_, batch) = try taskAndBatch()
        let s = try XCTUnwrap(batch.warpedPairs)
        XCTAssertEqual(s.pairRows, batch.movingLabelled.indices.filter { batch.movingLabelled[$0] })
        XCTAssertEqual(s.extraCount, 0)
        XCTAssertEqual(s.globalCount, s.pairRows.count)
        for (r, i) in s.pairRows.enumerated() {
            XCTAssertEqual(row(s.images, r).scalars, row(batch.moving, i).scalars)
            XCTAssertEqual(row(s.foreground, r).scalars, row(batch.movingForeground, i).scalars)
        }
        XCTAssertEqual(s.distances.shape, [s.count, 3, 32, 32])  // the tiny run has a boundary term
    }

    /// With an integer field (a shift of (+1, −2) voxels) the warped pair is the shifted image and
    /// the exactly shifted one-hot labels — no class mixing, background outside the grid.
    func testIntegerFieldShiftsImageAndLabelsAlike() throws {
        let (task, batch) = try taskAndBatch()
        let s = try XCTUnwrap(batch.warpedPairs)
        let n = batch.fixed.shape[0], side = 32
        let flow = Tensor(shape: [n, 2, side, side], data: (0..<n).flatMap { _ in
            [Float](repeating: 1, count: side * side) + [Float](repeating: -2, count: side * side)
        })
        let out = try XCTUnwrap(withoutGradients {
            task.warpedPairs(s, flow: flow, localPairs: n, globalPairs: n, trainUNet: true)
        })
        var checked = 0
        for (r, i) in s.pairRows.enumerated() {
            let labels = row(batch.movingLabels, i), image = row(batch.moving, i)
            for y in 0..<side {
                for x in 0..<side {
                    let (sy, sx) = (y + 1, x - 2), inside = sy < side && sx >= 0
                    let v = y * side + x
                    let expectedImage = inside ? image[flat: sy * side + sx] : 0
                    let expectedClass = inside ? Int(labels[flat: sy * side + sx]) : 0
                    XCTAssertEqual(row(out.targets, r)[flat: v], expectedClass == 0 ? 1 : 0, accuracy: 1e-6)
                    for c in 1..<3 {
                        XCTAssertEqual(row(out.targets, r)[flat: c * side * side + v], expectedClass == c ? 1 : 0, accuracy: 1e-6)
                    }
                    XCTAssertEqual(row(warp(s.images, flow.slice(axis: 0, 0..<s.count)), r)[flat: v], expectedImage, accuracy: 1e-6)
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 0)
    }

    /// With the network's own field: each warped sample's targets are its one-hot labels warped
    /// linearly by its own pair's field (T_0 = 1 − Σ T_c), its distance maps warped by the same
    /// field, and the U-Net's logits are those of the moving image warped by that field.
    func testWarpedPairLabelsAreTheOneHotLabelsWarpedByThePairsField() throws {
        let (task, batch) = try taskAndBatch()
        let s = try XCTUnwrap(batch.warpedPairs)
        let n = batch.fixed.shape[0]
        try withoutGradients {
            // The network's field plus a non-integer shift of its own per pair (the initial field
            // is near 0), so each row must take its own pair's field.
            var offsets: [Float] = []
            for i in 0..<n { offsets += [0.4 + 0.5 * Float(i), -0.3 - 0.5 * Float(i)] }
            let shifts = Tensor(shape: [n, 2, 1, 1], data: offsets)
            let flow = task.network.registration(moving: batch.moving, fixed: batch.fixed) + shifts
            let out = try XCTUnwrap(task.warpedPairs(s, flow: flow, localPairs: n, globalPairs: n, trainUNet: true))
            XCTAssertEqual(out.targets.shape, [s.count, 3, 32, 32])
            for (r, i) in s.pairRows.enumerated() {
                let u = row(flow, i)
                let fg = warp(foregroundOneHot(row(batch.movingLabels, i), classes: 3), u)
                let t = row(out.targets, r)
                XCTAssertEqual(Array(t.slice(axis: 1, 1..<3).scalars), fg.scalars)
                let background = t.slice(axis: 1, 0..<1).scalars, mass = fg.sum(axes: [1]).scalars
                for v in background.indices { XCTAssertEqual(background[v], 1 - mass[v], accuracy: 1e-6) }
                XCTAssertTrue(fg.scalars.contains { $0 > 0.01 && $0 < 0.99 }, "a non-integer field mixes classes at boundaries")
                let logits = task.network.segmentation(warp(row(batch.moving, i), u))
                XCTAssertEqual(Array(row(out.logits, r).scalars), logits.scalars)
                XCTAssertEqual(Array(row(out.distances, r).scalars), warp(row(s.distances, r), u).scalars)
            }
        }
    }

    /// The regional term's value is the soft-target Dice + CE of the U-Net on the warped images;
    /// the terms' gradients reach the U-Net only (the field is detached).
    func testWarpedPairsTermsAreTheSoftRegionalLossAndTrainTheUNetOnly() throws {
        let (task, batch) = try taskAndBatch()
        let value = task.loss(batch, epoch: 0)
        XCTAssertEqual(Array(value.terms.map(\.name).suffix(2)), ["warped_pairs", "warped_pairs_boundary"])
        let expected = withoutGradients { () -> Float in
            let flow = task.network.registration(moving: batch.moving, fixed: batch.fixed)
            let out = task.warpedPairs(batch.warpedPairs!, flow: flow, localPairs: 2, globalPairs: 2, trainUNet: true)!
            return SoftTargetRegionalLoss()(logits: out.logits, targets: out.targets).item
        }
        XCTAssertGreaterThan(expected, 0)
        XCTAssertEqual(value["warped_pairs"]!.value, expected, accuracy: 1e-5 * expected)

        task.network.zeroGrad()
        let flow = task.network.registration(moving: batch.moving, fixed: batch.fixed)
        let out = task.warpedPairs(batch.warpedPairs!, flow: flow, localPairs: 2, globalPairs: 2, trainUNet: true)!
        let terms = JointTask.warpedPairTerms(task.config)
        let logits = withoutGradients { task.network.segmentation(batch.images) }
        let output = JointTask.Output(batch: batch, logits: logits, probs: logits.softmax(), flow: flow, labelledShare: 1, classes: 3)
        var withPairs = output
        withPairs.warpedPairs = out
        (terms[0].evaluate(withPairs) + terms[1].evaluate(withPairs)).backward()
        XCTAssertGreaterThan(gradientMass(task.network.segmentation), 0)
        XCTAssertEqual(gradientMass(task.network.registration), 0)
    }

    /// The terms' weights are w_wp times the labelled terms' rebalance weights: w_wp·max(floor,
    /// 1 − α_e) and w_wp·α_e (tiny run: α_e = min(0.1 + 0.05·e, 0.5)).
    func testWarpedPairsWeightsFollowTheRebalanceSchedule() throws {
        let (task, batch) = try taskAndBatch()
        for (epoch, alpha) in [(0, 0.1), (4, 0.3), (20, 0.5)] {
            let value = withoutGradients { task.loss(batch, epoch: epoch) }
            XCTAssertEqual(value["warped_pairs"]!.weight, 0.5 * (1 - alpha), accuracy: 1e-12)
            XCTAssertEqual(value["warped_pairs_boundary"]!.weight, 0.5 * alpha, accuracy: 1e-12)
            XCTAssertEqual(value["dice_ce"]!.weight, 1 - alpha, accuracy: 1e-12)
        }
    }

    /// Extra pairs: a labelled training image (image and labels) onto a different training image,
    /// warped by the field the displacement network gives that pair.
    func testExtraPairsWarpALabelledTrainingImageOntoAnotherWithItsField() throws {
        let (task, batch) = try taskAndBatch(extra: 3)
        let s = try XCTUnwrap(batch.warpedPairs)
        XCTAssertEqual(s.extraCount, 3)
        XCTAssertEqual(s.globalCount, s.pairRows.count + 3)
        let images = task.dataset.images
        let p = s.pairRows.count
        for j in 0..<3 {
            let moving = row(s.images, p + j).scalars, fixed = row(s.extraFixed, j).scalars
            let m = try XCTUnwrap(images.firstIndex { $0.image.data == moving })
            XCTAssertNotNil(images[m].labels, "extra moving image \(j) is labelled")
            XCTAssertEqual(row(s.foreground, p + j).scalars,
                           foregroundOneHot(Tensor(shape: [1, 1, 32, 32], data: images[m].labels!.data), classes: 3).scalars)
            let f = try XCTUnwrap(images.firstIndex { $0.image.data == fixed })
            XCTAssertNotEqual(f, m)
        }
        try withoutGradients {
            let flow = task.network.registration(moving: batch.moving, fixed: batch.fixed)
            let out = try XCTUnwrap(task.warpedPairs(s, flow: flow, localPairs: 2, globalPairs: 2, trainUNet: true))
            let extraMoving = s.images.slice(axis: 0, p..<(p + 3))
            let u = task.network.registration(moving: extraMoving, fixed: s.extraFixed)
            XCTAssertEqual(Array(out.targets.slice(axis: 0, p..<(p + 3)).slice(axis: 1, 1..<3).scalars),
                           warp(s.foreground.slice(axis: 0, p..<(p + 3)), u).scalars)
        }
        // Different steps draw different extras; the same step the same ones.
        XCTAssertEqual(task.makeBatch(1, 7).warpedPairs!.images.scalars, task.makeBatch(1, 7).warpedPairs!.images.scalars)
        XCTAssertNotEqual(task.makeBatch(1, 7).warpedPairs!.extraFixed.scalars, task.makeBatch(1, 8).warpedPairs!.extraFixed.scalars)
    }

    /// Extra pair j belongs to the shard holding pair position j mod N; every shard knows the
    /// global W, and the shards' sources are the whole batch's.
    func testExtraPairsAreSplitOverShardsByPairPosition() throws {
        let task = try JointTask(config: config(labelled: 3, joint: "warped_pairs: {weight: 1, extra: 3}"))
        let whole = task.makeBatch(6, 3).warpedPairs!
        let first = task.makeShard!(6, 3, [0]).warpedPairs!, second = task.makeShard!(6, 3, [1]).warpedPairs!
        XCTAssertEqual(first.extraCount, 2)
        XCTAssertEqual(second.extraCount, 1)
        XCTAssertEqual(first.globalCount, whole.globalCount)
        XCTAssertEqual(second.globalCount, whole.globalCount)
        XCTAssertEqual(first.count + second.count, whole.count)
        let wp = whole.pairRows.count
        XCTAssertEqual(row(first.extraFixed, 0).scalars + row(first.extraFixed, 1).scalars,
                       row(whole.extraFixed, 0).scalars + row(whole.extraFixed, 2).scalars)
        XCTAssertEqual(row(second.extraFixed, 0).scalars, row(whole.extraFixed, 1).scalars)
        XCTAssertEqual(row(second.images, second.pairRows.count).scalars, row(whole.images, wp + 1).scalars)
    }

    /// Off by default (no terms, no sources); the keys round-trip through the resolved YAML;
    /// wrong values and a run without labelled images are refused naming the key.
    func testWarpedPairsConfigDefaultsRoundTripAndErrors() throws {
        let plain = try config(labelled: 3)
        XCTAssertEqual(plain.joint.warpedPairsWeight.start, 0)
        XCTAssertEqual(plain.joint.warpedPairsExtra, 0)
        let task = try JointTask(config: plain)
        let b = task.makeBatch(1, 0)
        XCTAssertNil(b.warpedPairs)
        XCTAssertFalse(task.loss(b, epoch: 0).terms.map(\.name).contains { $0.hasPrefix("warped_pairs") })

        let c = try config(labelled: 3, joint: "warped_pairs: {weight: {start: 0.5, step: 0.1, cap: 1}, extra: 2}")
        XCTAssertEqual(c.joint.warpedPairsWeight.step, 0.1)
        XCTAssertEqual(c.joint.warpedPairsExtra, 2)
        XCTAssertTrue(c.yaml.contains("warped_pairs:"), c.yaml)
        XCTAssertEqual(try JointRunConfig(yaml: c.yaml), c)

        for (line, key) in [
            ("warped_pairs: {weight: -1}", "joint.warped_pairs.weight"), ("warped_pairs: {weight: 1, extra: -1}", "joint.warped_pairs.extra"),
            ("warped_pairs: {weight: 1, detach: false}", "detach"),
        ] {
            XCTAssertThrowsError(try config(joint: line), line) { error in XCTAssertTrue("\(error)".contains(key), "\(error)") }
        }
        XCTAssertThrowsError(try JointTask(config: config(labelled: 0, joint: "warped_pairs: {weight: 1}"))) { error in
            XCTAssertTrue("\(error)".contains("joint.warped_pairs.weight"), "\(error)")
        }
    }

    /// A resumed run with warped pairs (extra pairs, two loader threads) continues exactly:
    /// identical losses at every epoch; the term changes the run.
    func testResumedJointRunWithWarpedPairsMatchesAnUninterruptedOne() throws {
        let saved = Parallel.threads
        Parallel.threads = 1
        defer { Parallel.threads = saved }
        let c = try config(labelled: 3, epochs: 3, steps: 3, joint: "warped_pairs: {weight: 1, extra: 2}", threads: 2)
        let full = try TrainingRun.run(.joint(c), output: tempDir + "/full", progress: quiet())
        _ = try TrainingRun.run(.joint(c), output: tempDir + "/cut", stopAfterEpoch: 1, progress: quiet())
        let resumed = try TrainingRun.run(.joint(c), output: tempDir + "/cut", resume: tempDir + "/cut/last.safetensors", progress: quiet())
        XCTAssertEqual(resumed.history.map(\.loss), full.history.map(\.loss))
        XCTAssertTrue(full.history.allSatisfy { h in h.terms.contains { $0.name == "warped_pairs" && $0.value > 0 } })
        let other = try TrainingRun.run(.joint(try config(labelled: 3, epochs: 3, steps: 3, threads: 2)), output: tempDir + "/other", progress: quiet())
        XCTAssertNotEqual(other.history.map(\.loss), full.history.map(\.loss))
    }
}
