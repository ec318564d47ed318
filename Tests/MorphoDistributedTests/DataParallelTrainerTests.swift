import Foundation
import XCTest
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
@testable import MorphoDistributed
@testable import MorphoTrain
import MorphoTestSupport

/// A regression task for the trainer: sample k of batch `step` is drawn from its own stream, so
/// any split of the batch over ranks sees the same global batch.
final class RegressionTask: TrainingTask {
    typealias Batch = [[Float]]

    let net: LinearModel
    let objective: WeightedLoss<(Tensor, Tensor)>
    /// The loss call (counted from 1) that returns NaN on this task, if any.
    let poisonedCall: Int?
    /// Whether `validateShard` gives per-subject rows (else rank 0 validates alone).
    let perSubjectValidation: Bool
    private var calls = 0
    /// Validation subjects this task evaluated.
    private(set) var validated: [Int] = []
    static let subjects = 5

    init(poisonedCall: Int? = nil, perSubjectValidation: Bool = true) {
        self.poisonedCall = poisonedCall
        self.perSubjectValidation = perSubjectValidation
        let net = LinearModel([0.3, -0.2, 0.1], bias: 0.05, running: 1)
        self.net = net
        objective = try! WeightedLoss([LossTerm("mse") { (input: (Tensor, Tensor)) in net.loss(input.0, input.1) }])
    }

    var model: any Module { net }
    var scoreName: String { "score" }
    var validationCaseNames: [String] { (0..<Self.subjects).map { "subject_\($0)" } }

    static func sample(seed: UInt64, step: Int, k: Int) -> [Float] {
        var rng = SeedStream.generator(seed: seed, step, k)
        let x = [rng.uniform(), rng.uniform(), rng.uniform()].map { 2 * $0 - 1 }
        return x + [0.7 * x[0] - 0.4 * x[1] + 0.2 * x[2] + 0.3]
    }

    var makeBatch: @Sendable (UInt64, Int) -> [[Float]] { { seed, step in (0..<4).map { Self.sample(seed: seed, step: step, k: $0) } } }
    var makeShard: (@Sendable (UInt64, Int, [Int]) -> [[Float]])? { { seed, step, positions in positions.map { Self.sample(seed: seed, step: step, k: $0) } } }

    func loss(_ batch: [[Float]], epoch: Int) -> WeightedLossValue {
        calls += 1
        let poison: Float = calls == poisonedCall ? .nan : 0
        let x = Tensor(shape: [batch.count, 3], data: batch.flatMap { $0.prefix(3) })
        let y = Tensor(shape: [batch.count], data: batch.map { $0[3] + poison })
        return objective((x, y), epoch: epoch)
    }

    func subjectScore(_ i: Int) -> Double {
        let s = Self.sample(seed: 99, step: 0, k: i)
        return withoutGradients { -Double(net.loss(Tensor(shape: [1, 3], data: Array(s.prefix(3))), Tensor(shape: [1], data: [s[3]])).item) }
    }

    func validate() throws -> [(name: String, value: Double)] {
        DataParallel().meanOverSamples(rows(rank: 0, size: 1))
    }

    func validateShard(rank: Int, size: Int) throws -> [[(name: String, value: Double)]]? {
        perSubjectValidation ? rows(rank: rank, size: size) : nil
    }

    func rows(rank: Int, size: Int) -> [[(name: String, value: Double)]] {
        stride(from: rank, to: Self.subjects, by: size).map { i in
            validated.append(i)
            return [("score", subjectScore(i)), ("subject", Double(i))]
        }
    }

    func drawOverlay(to path: String) throws {}
}

/// A task without `makeShard`: one process only.
final class UnshardedTask: TrainingTask {
    let inner = RegressionTask()
    var model: any Module { inner.model }
    var scoreName: String { inner.scoreName }
    var makeBatch: @Sendable (UInt64, Int) -> [[Float]] { inner.makeBatch }
    func loss(_ batch: [[Float]], epoch: Int) -> WeightedLossValue { inner.loss(batch, epoch: epoch) }
    func validate() throws -> [(name: String, value: Double)] { try inner.validate() }
    func drawOverlay(to path: String) throws {}
}

final class DataParallelTrainerTests: XCTestCase {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("dp-trainer")
    }

    /// The trainer reads only the training section; the phantom keeps the config valid.
    func config(epochs: Int = 3, batch: Int = 4) throws -> RunConfig {
        try RunConfig(yaml: """
            name: regression
            model:
              unet: {dims: 2, channels: [4, 8], classes: 2}
            data:
              phantom: {size: [16, 16], count: 4, seed: 1}
              threads: 1
            training:
              epochs: \(epochs)
              steps_per_epoch: 5
              batch_size: \(batch)
              optimizer: {kind: sgd, lr: 0.1, momentum: 0.9}
              validate_every: 1
            output:
              plots: false
            """)
    }

    struct Outcome {
        var weights: [Float]
        var summary: TrainingSummary?
        var error: MorphoTrainError?
        var validated: [Int]
    }

    /// Trains a `RegressionTask` on `ranks` threads (one process with `ranks` = 1) into
    /// `<tempDir>/<name>-r<rank>`.
    func train(_ name: String, ranks: Int, config: RunConfig, poison: (rank: Int, call: Int)? = nil,
               resumeFrom: String? = nil, stopAfter: Int? = nil, perSubjectValidation: Bool = true) -> [Outcome] {
        let dir = tempDir
        let body: @Sendable (any Communicator) -> Outcome = { communicator in
            let task = RegressionTask(poisonedCall: poison?.rank == communicator.rank ? poison?.call : nil,
                                      perSubjectValidation: perSubjectValidation)
            let options = TrainerOptions(
                outputDirectory: "\(dir)/\(name)-r\(communicator.rank)", resumeFrom: resumeFrom, stopAfterEpoch: stopAfter,
                progress: ProgressReporter(style: .quiet), parallel: DataParallel(communicator))
            do {
                let summary = try Trainer(task: task, config: config, options: options).run()
                return Outcome(weights: task.net.namedState.map(\.1).gatherValues(), summary: summary, validated: task.validated)
            } catch {
                return Outcome(weights: [], error: error as? MorphoTrainError, validated: task.validated)
            }
        }
        if ranks == 1 { return [body(SingleProcessCommunicator())] }
        return LocalGroup.run(ranks: ranks, body)
    }

    func assertClose(_ a: [Float], _ b: [Float], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) }.reduce(0, nanStrictMax)
        XCTAssertLessThan(worst, 1e-6, "\(message): differ by \(worst)", file: file, line: line)
    }

    func testTrainerOnTwoRanksReachesTheWeightsOfOneProcess() throws {
        // Batch 4 splits 2 + 2; batch 3 splits 2 + 1, then 1 + 2 (weighted averaging).
        for batch in [4, 3] {
            let c = try config(batch: batch)
            let one = train("one-\(batch)", ranks: 1, config: c)[0]
            let two = train("two-\(batch)", ranks: 2, config: c)
            XCTAssertNil(one.error)
            let start = RegressionTask().net.namedState.map(\.1).gatherValues()
            XCTAssertGreaterThan(zip(one.weights, start).map { abs($0 - $1) }.max()!, 0.05, "training moved the weights")
            for (rank, outcome) in two.enumerated() {
                XCTAssertNil(outcome.error)
                assertClose(outcome.weights, one.weights, "batch \(batch), rank \(rank) vs one process")
                let losses = outcome.summary!.history.map(\.loss), reference = one.summary!.history.map(\.loss)
                for (l, r) in zip(losses, reference) { XCTAssertEqual(l, r, accuracy: 1e-6 * max(1, abs(r))) }
                XCTAssertEqual(outcome.summary!.bestEpoch, one.summary!.bestEpoch)
                XCTAssertEqual(outcome.summary!.bestScore, one.summary!.bestScore, accuracy: 1e-6)
            }
        }
    }

    func testValidationIsSharedOutBySubjectAndAveraged() throws {
        let two = train("val", ranks: 2, config: try config(epochs: 1))
        XCTAssertEqual(two[0].validated, [0, 2, 4])
        XCTAssertEqual(two[1].validated, [1, 3])
        // "subject" is the subject index: its mean over all subjects is 2 only if all were counted.
        let record = try XCTUnwrap(two[1].summary?.history.last)
        XCTAssertEqual(record.metric("subject"), 2)
        XCTAssertEqual(record.metric("score"), two[0].summary?.history.last?.metric("score"))
    }

    func testPerCaseTableOfTwoRanksHoldsEverySubjectAsOneProcessDoes() throws {
        let one = train("cases-one", ranks: 1, config: try config(epochs: 1))[0]
        let two = train("cases-two", ranks: 2, config: try config(epochs: 1))
        XCTAssertNil(one.error)
        XCTAssertNil(two[0].error)
        let single = try XCTUnwrap(ValidationCases.load(runFolder: tempDir + "/cases-one-r0"))
        let shared = try XCTUnwrap(ValidationCases.load(runFolder: tempDir + "/cases-two-r0"), "rank 0 writes the table")
        XCTAssertEqual(shared.cases.map(\.name), (0..<RegressionTask.subjects).map { "subject_\($0)" })
        XCTAssertEqual(shared.metrics, ["score", "subject"])
        // Row i is subject i's, whichever rank validated it.
        XCTAssertEqual(shared.cases.map { $0.values[1] }, (0..<RegressionTask.subjects).map(Double.init))
        for (a, b) in zip(shared.cases, single.cases) {
            XCTAssertEqual(a.values[0], b.values[0], accuracy: 1e-9, a.name)
        }
    }

    func testWithoutPerSubjectRowsRankZeroValidatesForAll() throws {
        let one = train("val-one", ranks: 1, config: try config(epochs: 1))[0]
        let two = train("val-root", ranks: 2, config: try config(epochs: 1), perSubjectValidation: false)
        XCTAssertEqual(two[0].validated, [0, 1, 2, 3, 4])
        XCTAssertEqual(two[1].validated, [])
        for outcome in two {
            let record = try XCTUnwrap(outcome.summary?.history.last)
            XCTAssertEqual(record.metric("subject"), 2)
            XCTAssertEqual(record.metric("score")!, one.summary!.history.last!.metric("score")!, accuracy: 1e-6)
        }
    }

    func testATaskWithoutShardsIsRefusedOnSeveralRanks() throws {
        let c = try config()
        let errors = LocalGroup.run(ranks: 2) { communicator -> MorphoTrainError? in
            let options = TrainerOptions(outputDirectory: "/nonexistent", progress: ProgressReporter(style: .quiet),
                                         parallel: DataParallel(communicator))
            do { _ = try Trainer(task: UnshardedTask(), config: c, options: options); return nil } catch { return error as? MorphoTrainError }
        }
        for error in errors {
            guard case .config(_, let key, let message)? = error else { return XCTFail("\(String(describing: error))") }
            XCTAssertEqual(key, "model.kind")
            XCTAssertTrue(message.contains("MPI ranks"), message)
        }
        XCTAssertNoThrow(try Trainer(task: UnshardedTask(), config: c, options: TrainerOptions(outputDirectory: tempDir + "/u")))
    }

    func testOnlyRankZeroWritesTheRunFolder() throws {
        _ = train("files", ranks: 2, config: try config(epochs: 1))
        XCTAssertTrue(FileManager.default.fileExists(atPath: tempDir + "/files-r0/last.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: tempDir + "/files-r0/metrics.jsonl"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: tempDir + "/files-r1"))
    }

    func testNonFiniteLossOnOneRankStopsEveryRankAtTheSameStep() throws {
        // Rank 1's 7th loss (epoch 2, step 2) is NaN; rank 0's are all finite.
        let two = train("nan", ranks: 2, config: try config(), poison: (rank: 1, call: 7))
        for outcome in two {
            guard case .nonFiniteLoss(let epoch, let step, _)? = outcome.error else {
                return XCTFail("expected a non-finite loss error, got \(String(describing: outcome.error))")
            }
            XCTAssertEqual([epoch, step], [2, 2])
        }
        // The checkpoint of epoch 1 is intact and loads.
        XCTAssertEqual(try Checkpoint.read(tempDir + "/nan-r0/last.safetensors").epoch, 1)
    }

    func testResumeWorksWithAnotherNumberOfRanks() throws {
        let c = try config(epochs: 3)
        let straight = train("straight", ranks: 1, config: c)[0]
        // Two ranks stop after epoch 1; one process resumes from their checkpoint, and back.
        _ = train("a", ranks: 2, config: c, stopAfter: 1)
        let oneResumed = train("a", ranks: 1, config: c, resumeFrom: tempDir + "/a-r0/last.safetensors", stopAfter: 2)[0]
        XCTAssertEqual(oneResumed.summary?.epochs, 2)
        let twoResumed = train("b", ranks: 2, config: c, resumeFrom: tempDir + "/a-r0/last.safetensors")
        for outcome in twoResumed {
            XCTAssertNil(outcome.error)
            XCTAssertEqual(outcome.summary?.epochs, 3)
            assertClose(outcome.weights, straight.weights, "1 → 2 ranks resumed vs straight")
        }
        let threeResumed = train("c", ranks: 3, config: c, resumeFrom: tempDir + "/a-r0/last.safetensors")
        assertClose(threeResumed[2].weights, straight.weights, "1 → 3 ranks resumed vs straight")
    }

    func testBatchSmallerThanTheRanksIsAConfigError() throws {
        let three = train("small", ranks: 3, config: try config(batch: 2))
        for outcome in three {
            guard case .config(_, let key, _)? = outcome.error else { return XCTFail("\(String(describing: outcome.error))") }
            XCTAssertEqual(key, "training.batch_size")
        }
    }
}
