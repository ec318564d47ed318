import Foundation
import XCTest
import MorphoKernels
import MorphoTensor
@testable import MorphoDistributed
@testable import MorphoTrain
import MorphoTestSupport

/// Joint segmentation + registration steps split over ranks (threads of this process): the
/// segmentation terms average over the labelled images only, and ranks that hold different
/// numbers of them must still reduce to the gradient of one process on the global batch.
final class JointDataParallelTests: XCTestCase {
    /// A small 2D phantom joint run: 32×32 phantoms, 8 training images of which 3 labelled,
    /// random pairs, every segmentation term on (regional, boundary, PRL).
    /// `joint` lines are added to the `joint:` section.
    static func config(batch: Int, epochs: Int = 2, joint: String? = nil) throws -> JointRunConfig {
        var yaml = TinyConfigs.joint(
            labelledImages: 3, epochs: epochs, steps: 3, batchSize: batch, optimizer: "{kind: sgd, lr: 0.05, momentum: 0.9}",
            extra: "output:\n  plots: false")
        if let joint { yaml = yaml.replacingOccurrences(of: "joint:\n", with: "joint:\n  \(joint)\n") }
        return try JointRunConfig(yaml: yaml, file: "tiny-joint.yaml")
    }

    struct Reduced {
        var gradient: [Float]
        var scalars: [Double]
    }

    /// One step's all-reduced gradient and scalars (total, then terms) on `ranks` thread-ranks,
    /// batch `step` of the stream `seed`; `naive` gives each shard its own counts as the global
    /// ones (weighting by pairs alone).
    func reducedStep(_ c: JointRunConfig, ranks: Int, seed: UInt64, step: Int, naive: Bool = false) -> [Reduced] {
        LocalGroup.run(ranks: ranks) { communicator -> Reduced in
            let parallel = DataParallel(communicator)
            let task = try! JointTask(config: c)
            let batchSize = c.run.training.batchSize
            let positions = parallel.shard(step: step, batchSize: batchSize)
            var batch = task.makeShard!(seed, step, positions)
            if naive {
                batch.globalPairs = positions.count
                batch.globalLabelled = batch.labelledCount
            }
            let value = task.loss(batch, epoch: 0)
            value.total.backward()
            let scalars = parallel.reduceStep(
                task.model.parameters, scalars: [Double(value.total.item)] + value.terms.map { Double($0.value) },
                localSamples: positions.count, globalSamples: batchSize)
            return Reduced(gradient: task.model.parameters.gatherGradients(), scalars: scalars)
        }
    }

    /// The first step (of the stream `seed`) whose shards over 2 ranks hold different numbers of
    /// labelled images.
    func stepWithUnequalLabels(_ task: JointTask, seed: UInt64, batch: Int) -> Int? {
        (0..<64).first { step in
            let counts = (0..<2).map { rank in
                JointTask.labelledImages(
                    task.dataset, seed: seed, step: step, positions: DataParallel.shard(step: step, batchSize: batch, rank: rank, size: 2))
            }
            return counts[0] != counts[1] && counts.allSatisfy { $0 > 0 }
        }
    }

    func largestDifference(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.reduce(0, nanStrictMax)
    }

    func testTwoRanksWithDifferentLabelledCountsReduceToTheGlobalBatchGradient() throws {
        let saved = Parallel.threads
        Parallel.threads = 1
        defer { Parallel.threads = saved }
        let c = try Self.config(batch: 4)
        let seed: UInt64 = 21
        let task = try JointTask(config: c)
        let step = try XCTUnwrap(stepWithUnequalLabels(task, seed: seed, batch: 4))

        let one = reducedStep(c, ranks: 1, seed: seed, step: step)[0]
        let scale = one.gradient.map(abs).reduce(0, nanStrictMax)
        XCTAssertGreaterThan(scale, 1e-2)
        let two = reducedStep(c, ranks: 2, seed: seed, step: step)
        for (rank, r) in two.enumerated() {
            let worst = largestDifference(r.gradient, one.gradient)
            XCTAssertLessThan(worst, 1e-4 * scale, "rank \(rank): gradient differs by \(worst) (up to \(scale))")
            for (i, v) in r.scalars.enumerated() {
                XCTAssertEqual(v, one.scalars[i], accuracy: 1e-5 * max(1, abs(one.scalars[i])), "rank \(rank), scalar \(i)")
            }
        }
        XCTAssertEqual(two[0].gradient, two[1].gradient, "ranks must hold identical gradients")
        // Averaging the labelled-image terms by pairs alone would be measurably off.
        let naive = reducedStep(c, ranks: 2, seed: seed, step: step, naive: true)[0]
        XCTAssertGreaterThan(largestDifference(naive.gradient, one.gradient), 100 * largestDifference(two[0].gradient, one.gradient))
    }

    /// `joint.warped_pairs` with extra pairs: the ranks hold different numbers of warped samples
    /// (the pairs' labelled moving images, extra pair j on the rank of position j mod N), and
    /// still reduce to the one-process gradient and term values.
    func testWarpedPairsOnTwoRanksReduceToTheGlobalBatchGradient() throws {
        let saved = Parallel.threads
        Parallel.threads = 1
        defer { Parallel.threads = saved }
        let c = try Self.config(batch: 4, joint: "warped_pairs: {weight: 1, extra: 3}")
        let seed: UInt64 = 21
        let task = try JointTask(config: c)
        let step = try XCTUnwrap((0..<64).first { step in
            let counts = (0..<2).map { rank in
                task.makeShard!(seed, step, DataParallel.shard(step: step, batchSize: 4, rank: rank, size: 2)).warpedPairs!.count
            }
            return counts[0] != counts[1]
        })
        let one = reducedStep(c, ranks: 1, seed: seed, step: step)[0]
        let scale = one.gradient.map(abs).reduce(0, nanStrictMax)
        XCTAssertGreaterThan(scale, 1e-2)
        let names = task.loss(task.makeBatch(seed, step), epoch: 0).terms.map(\.name)
        let warped = try XCTUnwrap(names.firstIndex(of: "warped_pairs")) + 1  // scalars: total, then terms
        XCTAssertGreaterThan(one.scalars[warped], 0)
        for (rank, r) in reducedStep(c, ranks: 2, seed: seed, step: step).enumerated() {
            XCTAssertLessThan(largestDifference(r.gradient, one.gradient), 1e-4 * scale, "rank \(rank)")
            for (i, v) in r.scalars.enumerated() {
                XCTAssertEqual(v, one.scalars[i], accuracy: 1e-5 * max(1, abs(one.scalars[i])), "rank \(rank), scalar \(i)")
            }
        }
    }

    func testUnevenSplitOfTheBatchAlsoReducesToTheGlobalBatchGradient() throws {
        let saved = Parallel.threads
        Parallel.threads = 1
        defer { Parallel.threads = saved }
        // 3 pairs over 2 ranks: 2 + 1 at even steps, 1 + 2 at odd ones.
        let c = try Self.config(batch: 3)
        let seed: UInt64 = 5
        let step = try XCTUnwrap(stepWithUnequalLabels(try JointTask(config: c), seed: seed, batch: 3))
        let one = reducedStep(c, ranks: 1, seed: seed, step: step)[0]
        let scale = one.gradient.map(abs).reduce(0, nanStrictMax)
        for r in reducedStep(c, ranks: 2, seed: seed, step: step) {
            XCTAssertLessThan(largestDifference(r.gradient, one.gradient), 1e-4 * scale)
            XCTAssertEqual(r.scalars[0], one.scalars[0], accuracy: 1e-5 * max(1, abs(one.scalars[0])))
        }
    }

    func testTrainerOnTwoRanksReachesTheJointWeightsOfOneProcess() throws {
        // Joint tasks used to be refused on several ranks (no shards); now the Trainer splits
        // them like the others, and 2 thread-ranks end where one process does.
        let saved = Parallel.threads
        Parallel.threads = 1
        defer { Parallel.threads = saved }
        let c = try Self.config(batch: 4)
        let dir = try temporaryFolder("joint-dp")
        let body: @Sendable (any Communicator) -> (weights: [Float], losses: [Double]) = { communicator in
            let task = try! JointTask(config: c)
            let options = TrainerOptions(outputDirectory: "\(dir)/r\(communicator.size)-\(communicator.rank)",
                                         progress: ProgressReporter(style: .quiet), parallel: DataParallel(communicator))
            let summary = try! Trainer(task: task, config: c.run, options: options).run()
            return (task.model.namedState.map(\.1).gatherValues(), summary.history.map(\.loss))
        }
        let one = body(SingleProcessCommunicator())
        let start = try JointTask(config: c).model.namedState.map(\.1).gatherValues()
        XCTAssertGreaterThan(largestDifference(one.weights, start), 1e-3, "training moved the weights")
        for (rank, outcome) in LocalGroup.run(ranks: 2, body).enumerated() {
            XCTAssertLessThan(largestDifference(outcome.weights, one.weights), 1e-5, "rank \(rank) vs one process")
            for (l, r) in zip(outcome.losses, one.losses) { XCTAssertEqual(l, r, accuracy: 1e-5 * max(1, abs(r))) }
        }
    }

    func testJointValidationRowsOfTwoRanksAverageToOneProcessesMetrics() throws {
        let c = try Self.config(batch: 4)
        let task = try JointTask(config: c)
        let single = try withoutGradients { try task.validate() }
        XCTAssertEqual(single.first?.name, "dice_mean")
        let shared = LocalGroup.run(ranks: 2) { communicator -> [(name: String, value: Double)] in
            let parallel = DataParallel(communicator)
            let task = try! JointTask(config: c)
            return withoutGradients { parallel.meanOverSamples(try! task.validateShard(rank: parallel.rank, size: parallel.size)!) }
        }
        for metrics in shared {
            XCTAssertEqual(metrics.map(\.name), single.map(\.name))
            for (a, b) in zip(metrics, single) { XCTAssertEqual(a.value, b.value, accuracy: 1e-9, a.name) }
        }
    }
}
