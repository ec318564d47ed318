import Foundation
import MorphoLosses
import MorphoNN
import MorphoTensor
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

/// `joint.warped_labels`: the labels of a labelled moving image, warped onto the unlabelled fixed
/// image it is registered to, as an extra (soft) segmentation target of the U-Net there.
final class JointWarpedLabelsTests: XCTestCase, TinyJointRun {
    func gradientMass(_ module: any Module) -> Double {
        module.parameters.reduce(0.0) { acc, p in acc + (p.grad.map { Double($0.abs().sum().item) } ?? 0) }
    }

    /// A task with 3 labelled images and the term on, and a batch with at least one pair whose
    /// moving image is labelled and whose fixed image is not.
    func taskAndBatch(detach: Bool = true) throws -> (JointTask, JointBatch) {
        let task = try JointTask(config: config(labelled: 3, joint: "warped_labels: {weight: 0.5, detach: \(detach)}"))
        for step in 0..<50 {
            let b = task.makeBatch(1, step)
            if b.movingLabelled.indices.contains(where: { b.movingLabelled[$0] && !b.fixedLabelled[$0] }) { return (task, b) }
        }
        throw XCTSkip("no batch with a labelled moving and an unlabelled fixed image")
    }

    func output(_ task: JointTask, _ batch: JointBatch) -> JointTask.Output {
        let logits = task.network.segmentation(batch.images)
        let flow = task.network.registration(moving: batch.moving, fixed: batch.fixed)
        return JointTask.Output(batch: batch, logits: logits, probs: logits.softmax(), flow: flow, labelledShare: 1, classes: 3)
    }

    func testWarpedLabelsTermIsTheSoftCrossEntropyOfTheFixedPredictionAgainstTheWarpedMovingLabels() throws {
        let (task, batch) = try taskAndBatch()
        XCTAssertEqual(task.loss(batch, epoch: 0).terms.map(\.name).last, "warped_labels")
        let (term, expected) = withoutGradients { () -> (Double, Double) in
            let term = Double(task.loss(batch, epoch: 0)["warped_labels"]!.value)  // unweighted
            let out = output(task, batch)
            // By hand, in Double: T = warped one-hot foreground, T_0 = 1 − Σ T_c, log-softmax of the fixed logits.
            let n = batch.fixed.shape[0], s = batch.fixed.spatialCount
            let t = warp(foregroundOneHot(batch.movingLabels, classes: 3), out.flow)
            let logits = out.logits
            var total = 0.0
            for i in 0..<n where batch.movingLabelled[i] && !batch.fixedLabelled[i] {
                for v in 0..<s {
                    let z = (0..<3).map { Double(logits[flat: ((n + i) * 3 + $0) * s + v]) }
                    let m = z.max()!, lse = m + log(z.map { exp($0 - m) }.reduce(0, +))
                    let t1 = Double(t[flat: (i * 2) * s + v]), t2 = Double(t[flat: (i * 2 + 1) * s + v])
                    total -= (1 - t1 - t2) * (z[0] - lse) + t1 * (z[1] - lse) + t2 * (z[2] - lse)
                }
            }
            return (term, total / Double(n * s))
        }
        XCTAssertGreaterThan(expected, 0)
        XCTAssertEqual(term, expected, accuracy: 1e-5 * expected)
    }

    func testDetachedWarpedLabelsTrainTheUNetOnly() throws {
        let (task, batch) = try taskAndBatch(detach: true)
        JointTask.warpedLabelsLoss(output(task, batch), detach: true).backward()
        XCTAssertGreaterThan(gradientMass(task.network.segmentation), 0)
        XCTAssertEqual(gradientMass(task.network.registration), 0)
    }

    func testUndetachedWarpedLabelsAlsoTrainTheDisplacementNetwork() throws {
        let (task, batch) = try taskAndBatch(detach: false)
        JointTask.warpedLabelsLoss(output(task, batch), detach: false).backward()
        XCTAssertGreaterThan(gradientMass(task.network.segmentation), 0)
        XCTAssertGreaterThan(gradientMass(task.network.registration), 0)
    }

    /// Finite differences of the term in the logits it reads (log-softmax of the fixed rows, the
    /// products with the target, the masked mean). The path into the flow is `warp`'s, checked
    /// in its own tests (its bilinear kinks make a check through it here fragile).
    func testWarpedLabelsGradientInTheLogitsMatchesFiniteDifferences() throws {
        let (task, batch) = try taskAndBatch()
        let (logits, flow) = withoutGradients {
            (task.network.segmentation(batch.images), task.network.registration(moving: batch.moving, fixed: batch.fixed))
        }
        let result = GradientCheck.check([logits], h: 1e-2, rtol: 2e-2, atol: 1e-5) { x in
            let out = JointTask.Output(batch: batch, logits: x[0], probs: x[0].softmax(), flow: flow * 20, labelledShare: 1, classes: 3)
            return JointTask.warpedLabelsLoss(out, detach: false)
        }
        XCTAssertTrue(result.passed, "\(result)")
    }

    /// Off by default, and then no term is added (the objective is unchanged).
    func testWarpedLabelsAreOffByDefault() throws {
        let c = try config(labelled: 3)
        XCTAssertEqual(c.joint.warpedLabelsWeight.start, 0)
        XCTAssertTrue(c.joint.warpedLabelsDetach)
        let task = try JointTask(config: c)
        XCTAssertFalse(task.loss(task.makeBatch(1, 0), epoch: 0).terms.map(\.name).contains("warped_labels"))
        XCTAssertThrowsError(try config(joint: "warped_labels: {weight: 1, detached: true}"))
    }
}
