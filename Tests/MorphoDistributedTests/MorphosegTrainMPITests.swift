import Foundation
import XCTest
import MorphoTensor
@testable import MorphoDistributed
@testable import MorphoTrain
import MorphoTestSupport

/// `mpirun -np 2 morphoseg train`: the CLI and trainer hooks end to end, on a small 2D phantom
/// run (about a second each).
final class MorphosegTrainMPITests: MPIProcessTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = try temporaryFolder("morphoseg-mpi")
        // SGD: its step is linear in the gradient, so 1 and 2 processes agree to float rounding
        // (Adam divides by √v and turns the ~1e-9 gradients of conv biases before instance norm
        // into whole steps, in one process as in several).
        try TinyConfigs.phantomSegmentation(epochs: 3, steps: 4, threads: 1, optimizer: "{kind: sgd, lr: 0.05, momentum: 0.9}")
            .write(toFile: dir + "/tiny.yaml", atomically: true, encoding: .utf8)
    }

    func modelWeights(_ run: String) throws -> [String: [Float]] {
        try Checkpoint.read(dir + "/" + run + "/last.safetensors").model.mapValues(\.scalars)
    }

    func assertSameWeights(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try modelWeights(a), y = try modelWeights(b)
        XCTAssertEqual(Set(x.keys), Set(y.keys), file: file, line: line)
        var worst: Float = 0, scale: Float = 0
        for (name, values) in x {
            for (u, v) in zip(values, y[name]!) {
                worst = nanStrictMax(worst, abs(u - v))
                scale = nanStrictMax(scale, abs(u))
            }
        }
        XCTAssertGreaterThan(scale, 0.1, file: file, line: line)
        XCTAssertLessThan(worst, 1e-5, "\(a) and \(b) differ by \(worst) (weights up to \(scale))", file: file, line: line)
    }

    func testTwoRanksTrainTheWeightsOfOneProcess() throws {
        let tools = try requireMPI("morphoseg")
        let one = try run(tools.program, ["train", "--config", "tiny.yaml", "--output", "one", "--threads", "1"], directory: dir)
        XCTAssertEqual(one.status, 0, one.errors)
        let two = try mpirun(tools, ranks: 2, ["train", "--config", "tiny.yaml", "--output", "two", "--threads", "1"], directory: dir)
        XCTAssertEqual(two.status, 0, two.errors)
        try assertSameWeights("one", "two")
        XCTAssertEqual(two.output.components(separatedBy: "done: 3 epochs").count, 2, "rank 0 alone reports: \(two.output)")
        let lines = try String(contentsOfFile: dir + "/two/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3, "one metrics line per epoch, from rank 0 only")
        let reference = try String(contentsOfFile: dir + "/one/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        for (a, b) in zip(lines, reference) {
            let x = try XCTUnwrap(EpochRecord(json: String(a))), y = try XCTUnwrap(EpochRecord(json: String(b)))
            XCTAssertEqual(x.loss, y.loss, accuracy: 1e-5)
            XCTAssertEqual(x.metric("dice_mean")!, y.metric("dice_mean")!, accuracy: 1e-4)
        }
        // The per-case table of report.html: every validation case, whichever rank validated it.
        let cases = try XCTUnwrap(ValidationCases.load(runFolder: dir + "/two"), "two ranks write validation_cases.json")
        let single = try XCTUnwrap(ValidationCases.load(runFolder: dir + "/one"))
        XCTAssertGreaterThan(cases.cases.count, 1)
        XCTAssertEqual(cases.cases.map(\.name), single.cases.map(\.name))
        XCTAssertEqual(cases.metrics, single.metrics)
        for (a, b) in zip(cases.cases, single.cases) {
            for (u, v) in zip(a.values, b.values) { XCTAssertEqual(u, v, accuracy: 1e-3 * max(1, abs(v)), a.name) }
        }
    }

    func testTwoRanksTrainTheRegistrationWeightsOfOneProcess() throws {
        let tools = try requireMPI("morphoseg")
        try TinyConfigs.registration(
            epochs: 2, steps: 5, threads: 1, optimizer: "{kind: sgd, lr: 0.05, momentum: 0.9}", validateEvery: 1).write(toFile: dir + "/reg.yaml", atomically: true, encoding: .utf8)
        let one = try run(tools.program, ["register", "train", "--config", "reg.yaml", "--output", "reg-one", "--threads", "1"], directory: dir)
        XCTAssertEqual(one.status, 0, one.errors)
        let two = try mpirun(tools, ranks: 2, ["register", "train", "--config", "reg.yaml", "--output", "reg-two", "--threads", "1"],
                             directory: dir)
        XCTAssertEqual(two.status, 0, two.errors)
        try assertSameWeights("reg-one", "reg-two")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/reg-two/registration.yaml"))
        XCTAssertEqual(two.output.components(separatedBy: "done: 2 epochs").count, 2, "rank 0 alone reports: \(two.output)")
    }

    /// The joint config of `JointDataParallelTests` (3 of 8 training images labelled) with
    /// `epochs` epochs, written to `<dir>/joint.yaml`.
    func writeJointConfig(epochs: Int) throws -> JointRunConfig {
        let yaml = try JointDataParallelTests.config(batch: 4, epochs: epochs).yaml
        try yaml.write(toFile: dir + "/joint.yaml", atomically: true, encoding: .utf8)
        return try JointRunConfig.load(dir + "/joint.yaml")
    }

    /// Steps of a fresh run of `config` whose two shards hold different numbers of labelled images.
    func stepsWithUnequalLabels(_ config: JointRunConfig) throws -> Int {
        let task = try JointTask(config: config)
        let t = config.run.training
        var seeds = Trainer<JointTask>.seedGenerator(config.run)
        var count = 0
        for _ in 0..<t.epochs {
            let seed = seeds.next()
            for step in 0..<t.stepsPerEpoch {
                let counts = (0..<2).map { rank in
                    JointTask.labelledImages(task.dataset, seed: seed, step: step,
                                             positions: DataParallel.shard(step: step, batchSize: t.batchSize, rank: rank, size: 2))
                }
                if counts[0] != counts[1] { count += 1 }
            }
        }
        return count
    }

    func testTwoRanksTrainTheJointWeightsOfOneProcessWhenTheirShardsHoldDifferentLabelledCounts() throws {
        let tools = try requireMPI("morphoseg")
        let config = try writeJointConfig(epochs: 2)
        XCTAssertGreaterThan(try stepsWithUnequalLabels(config), 0, "the run must exercise shards with unequal labelled images")
        let one = try run(tools.program, ["train", "--config", "joint.yaml", "--output", "joint-one", "--threads", "1"], directory: dir)
        XCTAssertEqual(one.status, 0, one.errors)
        let two = try mpirun(tools, ranks: 2, ["train", "--config", "joint.yaml", "--output", "joint-two", "--threads", "1"], directory: dir)
        XCTAssertEqual(two.status, 0, two.errors)
        try assertSameWeights("joint-one", "joint-two")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/joint-two/joint.yaml"))
        XCTAssertEqual(two.output.components(separatedBy: "done: 2 epochs").count, 2, "rank 0 alone reports: \(two.output)")
        let lines = try String(contentsOfFile: dir + "/joint-two/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let reference = try String(contentsOfFile: dir + "/joint-one/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2, "one metrics line per epoch, from rank 0 only")
        for (a, b) in zip(lines, reference) {
            let x = try XCTUnwrap(EpochRecord(json: String(a))), y = try XCTUnwrap(EpochRecord(json: String(b)))
            XCTAssertEqual(x.loss, y.loss, accuracy: 1e-5)
            for (s, t) in zip(x.terms, y.terms) { XCTAssertEqual(s.value, t.value, accuracy: 1e-5 * max(1, abs(t.value)), s.name) }
            XCTAssertEqual(x.metric("dice_mean")!, y.metric("dice_mean")!, accuracy: 1e-4)
            XCTAssertEqual(x.metric("seg_dice_mean")!, y.metric("seg_dice_mean")!, accuracy: 1e-4)
        }
    }

    func testResumeOfAOneProcessJointRunOnTwoRanksContinuesTheSameRun() throws {
        let tools = try requireMPI("morphoseg")
        _ = try writeJointConfig(epochs: 2)
        let straight = try run(tools.program, ["train", "--config", "joint.yaml", "--output", "joint-straight", "--threads", "1"],
                               directory: dir)
        XCTAssertEqual(straight.status, 0, straight.errors)
        let first = try run(tools.program, ["train", "--config", "joint.yaml", "--output", "joint-resumed", "--threads", "1", "--stop-after", "1"],
                            directory: dir)
        XCTAssertEqual(first.status, 0, first.errors)
        XCTAssertEqual(try Checkpoint.read(dir + "/joint-resumed/last.safetensors").epoch, 1)
        let second = try mpirun(tools, ranks: 2, ["train", "--output", "joint-resumed", "--resume", "--threads", "1", "--config", "joint.yaml"],
                                directory: dir)
        XCTAssertEqual(second.status, 0, second.errors)
        XCTAssertTrue(second.output.contains("done: 2 epochs"), second.output)
        try assertSameWeights("joint-straight", "joint-resumed")
    }

    func testResumeOfATwoRankRunInOneProcessContinuesTheSameRun() throws {
        let tools = try requireMPI("morphoseg")
        let straight = try run(tools.program, ["train", "--config", "tiny.yaml", "--output", "straight", "--threads", "1"], directory: dir)
        XCTAssertEqual(straight.status, 0, straight.errors)
        let first = try mpirun(tools, ranks: 2, ["train", "--config", "tiny.yaml", "--output", "resumed", "--threads", "1", "--stop-after", "1"],
                               directory: dir)
        XCTAssertEqual(first.status, 0, first.errors)
        XCTAssertEqual(try Checkpoint.read(dir + "/resumed/last.safetensors").epoch, 1)
        let second = try run(tools.program, ["train", "--output", "resumed", "--resume", "--threads", "1", "--config", "tiny.yaml"], directory: dir)
        XCTAssertEqual(second.status, 0, second.errors)
        try assertSameWeights("straight", "resumed")
    }

    func testAKilledRankStopsTheJobAndKeepsTheLastCheckpoint() throws {
        let tools = try requireMPI("morphoseg")
        let config = try String(contentsOfFile: dir + "/tiny.yaml", encoding: .utf8).replacingOccurrences(of: "epochs: 3", with: "epochs: 400")
        try config.write(toFile: dir + "/long.yaml", atomically: true, encoding: .utf8)
        let marker = UUID().uuidString
        // Once epoch 1's checkpoint exists, SIGKILL rank 1 (found by the marker mpirun passed on).
        // The killer looks for as long as the job runs, however slowly a busy machine runs it.
        let jobEnded = Flag(), killed = Flag()
        let killer = DispatchWorkItem { [dir] in
            while !jobEnded.value {
                if FileManager.default.fileExists(atPath: dir + "/long/last.safetensors"), let pid = Self.rankProcess(1, marker: marker) {
                    kill(pid, SIGKILL)
                    killed.value = true
                    return
                }
                usleep(50_000)
            }
        }
        DispatchQueue.global().async(execute: killer)
        // Bounded by progress: the epochs before the kill print lines and grow metrics.jsonl; a
        // surviving rank left waiting in a collective prints nothing, and is reported as hung.
        let result = try mpirun(tools, ranks: 2, ["train", "--config", "long.yaml", "--output", "long", "--threads", "1"], directory: dir,
                                environment: ["MORPHOSEG_TEST_MARKER": marker], progress: [dir + "/long/metrics.jsonl"], stallLimit: 120)
        jobEnded.value = true
        killer.wait()
        XCTAssertTrue(killed.value, "rank 1 was never found to kill: \(result.errors)")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertFalse(result.stalled, "the surviving rank must not wait for ever")
        XCTAssertFalse(result.output.contains("done:"), result.output)
        XCTAssertTrue(result.errors.contains("signal 9"), "mpirun names the killed rank: \(result.errors)")
        let checkpoint = try Checkpoint.read(dir + "/long/last.safetensors")
        XCTAssertGreaterThanOrEqual(checkpoint.epoch, 1)
        XCTAssertLessThan(checkpoint.epoch, 400)
    }

    /// The process of MPI rank `rank` whose environment holds `MORPHOSEG_TEST_MARKER=marker`.
    static func rankProcess(_ rank: Int, marker: String) -> pid_t? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for entry in entries {
            guard let pid = pid_t(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { continue }
            let vars = Set(data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
            if vars.contains("MORPHOSEG_TEST_MARKER=\(marker)") && vars.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
        }
        return nil
    }
}

/// A flag one thread sets and another reads.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var state = false

    var value: Bool {
        get { lock.withLock { state } }
        set { lock.withLock { state = newValue } }
    }
}
