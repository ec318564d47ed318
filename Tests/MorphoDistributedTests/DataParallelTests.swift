import XCTest
import MorphoNN
import MorphoTensor
@testable import MorphoDistributed

/// A linear model `y = x·w + b` whose loss is the mean squared error over the batch: the
/// gradient of a mean over samples, the case data parallelism must reproduce exactly.
final class LinearModel: Module {
    let weight: Parameter
    let bias: Parameter
    /// A non-trained buffer, like batch norm's running mean.
    let running: Parameter

    init(_ w: [Float], bias b: Float, running r: Float) {
        weight = Parameter(Tensor(shape: [1, w.count], data: w))
        bias = Parameter(Tensor(shape: [1], data: [b]))
        running = Parameter(Tensor(shape: [1], data: [r]), trainable: false)
    }

    var localParameters: [(String, Parameter)] { [("weight", weight), ("bias", bias), ("running", running)] }

    /// Mean over the rows of `x` `[n, k]` of `(x·w + b − y)²`.
    func loss(_ x: Tensor, _ y: Tensor) -> Tensor {
        let prediction = (x * weight.value).sum(axes: [1], keepDims: false) + bias.value
        return (prediction - y).squared().mean()
    }
}

/// Samples of the toy regression: row i of x and its target.
func toyBatch(_ positions: [Int]) -> (x: Tensor, y: Tensor) {
    var x: [Float] = [], y: [Float] = []
    for i in positions {
        let f = Float(i)
        x += [sin(f), cos(2 * f), 0.1 * f]
        y.append(0.5 * f - 1)
    }
    return (Tensor(shape: [positions.count, 3], data: x), Tensor(shape: [positions.count], data: y))
}

final class DataParallelTests: XCTestCase {
    func testShardsGiveEveryPositionToExactlyOneRank() {
        for batch in 1...9 {
            for size in 1...batch {
                for step in 0..<5 {
                    var owner = [Int](repeating: -1, count: batch)
                    for rank in 0..<size {
                        for k in DataParallel.shard(step: step, batchSize: batch, rank: rank, size: size) {
                            XCTAssertEqual(owner[k], -1, "position \(k) given twice (batch \(batch), \(size) ranks, step \(step))")
                            owner[k] = rank
                            // Epoch position p = step·batch + k belongs to rank p mod size.
                            XCTAssertEqual((step * batch + k) % size, rank)
                        }
                    }
                    XCTAssertFalse(owner.contains(-1), "a position was left out (batch \(batch), \(size) ranks, step \(step))")
                }
            }
        }
    }

    func testRanksTakeTurnsWhenTheBatchIsNotAMultipleOfTheRanks() {
        // 3 samples per step over 2 ranks: epoch positions 0 2 4 … go to rank 0.
        XCTAssertEqual(DataParallel.shard(step: 0, batchSize: 3, rank: 0, size: 2), [0, 2])
        XCTAssertEqual(DataParallel.shard(step: 0, batchSize: 3, rank: 1, size: 2), [1])
        XCTAssertEqual(DataParallel.shard(step: 1, batchSize: 3, rank: 0, size: 2), [1])
        XCTAssertEqual(DataParallel.shard(step: 1, batchSize: 3, rank: 1, size: 2), [0, 2])
    }

    func testValidationSubjectsAreDealtRoundRobin() {
        let shards = LocalGroup.run(ranks: 3) { DataParallel($0).shard(count: 7) }
        XCTAssertEqual(shards, [[0, 3, 6], [1, 4], [2, 5]])
    }

    func testBatchSmallerThanTheRanksIsRefusedWithItsKey() {
        let errors = LocalGroup.run(ranks: 3) { c -> DistributedError? in
            do throws(DistributedError) {
                try DataParallel(c).checkBatchSize(2, key: "training.batch_size")
                return nil
            } catch {
                return error
            }
        }
        XCTAssertEqual(errors[0], .batchSmallerThanRanks(key: "training.batch_size", batchSize: 2, ranks: 3))
        XCTAssertTrue(errors[0]!.description.contains("training.batch_size"))
    }

    func testSingleProcessReduceStepLeavesGradientsAndScalarsUntouched() {
        let model = LinearModel([0.3, -0.2, 0.1], bias: 0.05, running: 1)
        let (x, y) = toyBatch(Array(0..<4))
        model.loss(x, y).backward()
        let before = model.gatherGradients()
        let parallel = DataParallel()
        let scalars = parallel.reduceStep(model.parameters, scalars: [1.25, .nan], localSamples: 4, globalSamples: 4)
        XCTAssertEqual(scalars[0], 1.25)
        XCTAssertTrue(scalars[1].isNaN)
        XCTAssertEqual(model.gatherGradients(), before)
        XCTAssertEqual(parallel.reduceCalls, 0, "one process needs no all-reduce")
        XCTAssertEqual(parallel.shard(step: 3, batchSize: 5), [0, 1, 2, 3, 4])
    }

    func testReducedGradientIsTheGradientOfTheGlobalBatch() {
        // 5 samples over 3 ranks (2, 2, 1 at step 0): weighted by local counts, the sum of
        // the ranks' gradients is the gradient of the mean loss over all 5.
        let batch = 5, weights: [Float] = [0.3, -0.2, 0.1]
        let reference = LinearModel(weights, bias: 0.05, running: 1)
        let (x, y) = toyBatch(Array(0..<batch))
        let referenceLoss = reference.loss(x, y)
        referenceLoss.backward()
        let expected = reference.gatherGradients()
        XCTAssertGreaterThan(expected.map(abs).max()!, 0.1)

        let results = LocalGroup.run(ranks: 3) { c -> ([Float], [Double], Int) in
            let parallel = DataParallel(c)
            let model = LinearModel(weights, bias: 0.05, running: 1)
            let positions = parallel.shard(step: 0, batchSize: batch)
            let (x, y) = toyBatch(positions)
            let loss = model.loss(x, y)
            loss.backward()
            let scalars = parallel.reduceStep(model.parameters, scalars: [Double(loss.item)], localSamples: positions.count,
                                              globalSamples: batch)
            return (model.gatherGradients(), scalars, parallel.reduceCalls)
        }
        for (rank, (gradient, scalars, calls)) in results.enumerated() {
            XCTAssertEqual(calls, 1)
            XCTAssertEqual(scalars[0], Double(referenceLoss.item), accuracy: 1e-5, "rank \(rank): global-batch loss")
            for i in expected.indices {
                XCTAssertEqual(gradient[i], expected[i], accuracy: 1e-5 * max(1, abs(expected[i])), "rank \(rank), gradient \(i)")
            }
            XCTAssertEqual(gradient, results[0].0, "ranks must hold identical gradients")
        }
    }

    func testItemShareIsOneInOneProcessAndZeroWithoutItems() {
        XCTAssertEqual(DataParallel.itemShare(localItems: 3, globalItems: 3, localSamples: 4, globalSamples: 4), 1)
        XCTAssertEqual(DataParallel.itemShare(localItems: 0, globalItems: 3, localSamples: 2, globalSamples: 4), 0)
        XCTAssertEqual(DataParallel.itemShare(localItems: 0, globalItems: 0, localSamples: 4, globalSamples: 4), 0)
        // 1 of 4 items on half the samples: a quarter of the global mean, where reduceStep's
        // weighting would give it half.
        XCTAssertEqual(DataParallel.itemShare(localItems: 1, globalItems: 4, localSamples: 2, globalSamples: 4), 0.5)
    }

    func testItemShareMakesATermOverSomeSamplesTheGlobalBatchMean() {
        // Loss = mean over all samples of the squared error + mean over the "labelled" samples
        // only of the squared prediction. 6 samples over 2 ranks, labelled {0, 2, 4, 5}: rank 0
        // holds 0, 2, 4 (3 labelled), rank 1 holds 1, 3, 5 (1 labelled).
        let batch = 6, weights: [Float] = [0.3, -0.2, 0.1]
        let labelled: Set<Int> = [0, 2, 4, 5]
        @Sendable func loss(_ model: LinearModel, _ positions: [Int], share: (Int) -> Float) -> Tensor {
            let (x, y) = toyBatch(positions)
            let local = positions.filter(labelled.contains)
            let (lx, _) = toyBatch(local)
            let prediction = (lx * model.weight.value).sum(axes: [1], keepDims: false) + model.bias.value
            return model.loss(x, y) + prediction.squared().mean() * share(local.count)
        }
        let reference = LinearModel(weights, bias: 0.05, running: 1)
        let referenceLoss = loss(reference, Array(0..<batch)) { _ in 1 }
        referenceLoss.backward()
        let expected = reference.gatherGradients()

        func reduced(scaled: Bool) -> [([Float], Double)] {
            LocalGroup.run(ranks: 2) { c -> ([Float], Double) in
                let parallel = DataParallel(c)
                let model = LinearModel(weights, bias: 0.05, running: 1)
                let positions = parallel.shard(step: 0, batchSize: batch)
                let value = loss(model, positions) { local in
                    scaled ? DataParallel.itemShare(localItems: local, globalItems: labelled.count, localSamples: positions.count,
                                                    globalSamples: batch) : 1
                }
                value.backward()
                let scalars = parallel.reduceStep(model.parameters, scalars: [Double(value.item)], localSamples: positions.count,
                                                  globalSamples: batch)
                return (model.gatherGradients(), scalars[0])
            }
        }
        for (rank, (gradient, total)) in reduced(scaled: true).enumerated() {
            XCTAssertEqual(total, Double(referenceLoss.item), accuracy: 1e-5, "rank \(rank): global-batch loss")
            for i in expected.indices {
                XCTAssertEqual(gradient[i], expected[i], accuracy: 1e-5 * max(1, abs(expected[i])), "rank \(rank), gradient \(i)")
            }
        }
        // Weighting by samples alone (the shares 3 : 1 of the labelled images averaged as 1 : 1)
        // is measurably wrong, so the case above exercises the scaling.
        let naive = reduced(scaled: false)[0].0
        XCTAssertGreaterThan(zip(naive, expected).map { abs($0 - $1) }.max()!, 1e-2)
    }

    func testNonFiniteLossOnOneRankReachesEveryRank() {
        let results = LocalGroup.run(ranks: 2) { c -> Double in
            let parallel = DataParallel(c)
            let model = LinearModel([1, 1, 1], bias: 0, running: 0)
            let loss: Double = c.rank == 1 ? .infinity : 0.5
            return parallel.reduceStep(model.parameters, scalars: [loss], localSamples: 1, globalSamples: 2)[0]
        }
        XCTAssertFalse(results[0].isFinite)
        XCTAssertFalse(results[1].isFinite)
    }

    func testSynchronizeCopiesRankZerosWeightsAndBuffers() {
        let results = LocalGroup.run(ranks: 3) { c -> ([Float], Float, Float) in
            let parallel = DataParallel(c)
            let r = Float(c.rank)
            let model = LinearModel([r, r + 1, r + 2], bias: r, running: 10 * r + 3)
            let before = parallel.divergence(model)
            parallel.synchronize(model)
            return (model.namedState.map(\.1).gatherValues(), before, parallel.divergence(model))
        }
        for (values, before, after) in results {
            XCTAssertEqual(values, [0, 1, 2, 0, 3])
            XCTAssertEqual(before, 20, "largest difference from rank 0 before: running 23 vs 3")
            XCTAssertEqual(after, 0)
        }
    }

    func testAverageBuffersAveragesOnlyTheUntrainedState() {
        let results = LocalGroup.run(ranks: 2) { c -> ([Float], Float) in
            let model = LinearModel([Float(c.rank)], bias: 0, running: c.rank == 0 ? 1 : 4)
            DataParallel(c).averageBuffers(model)
            return (model.gatherParameters(), model.running.value.item)
        }
        XCTAssertEqual(results[0].1, 2.5)
        XCTAssertEqual(results[1].1, 2.5)
        XCTAssertEqual(results[0].0, [0, 0], "trained parameters are not averaged")
        XCTAssertEqual(results[1].0, [1, 0])
    }

    func testMeanOverSamplesSkipsNonFiniteValuesAndIsInfiniteWhenNoneIsFinite() {
        let rows: [[(name: String, value: Double)]] = [
            [("dice", 0.5), ("hd95", 3), ("msd", .infinity)],
            [("dice", 0.7), ("hd95", .infinity), ("msd", .nan)],
        ]
        let mean = DataParallel().meanOverSamples(rows)
        XCTAssertEqual(mean.map(\.name), ["dice", "hd95", "msd"])
        XCTAssertEqual(mean[0].value, 0.6, accuracy: 1e-12)
        XCTAssertEqual(mean[1].value, 3)
        XCTAssertEqual(mean[2].value, .infinity)
        XCTAssertTrue(DataParallel().meanOverSamples([]).isEmpty)
    }

    func testMeanOverSamplesOfShardedRowsEqualsTheMeanOfAllRows() {
        // 4 subjects over 3 ranks (rank 0 gets two, rank 2 one, in rank 0's name order).
        var rows: [[(name: String, value: Double)]] = []
        for i in 0..<4 {
            let dice = 0.1 * Double(i + 1)
            let hd95: Double = i == 2 ? .infinity : Double(i)
            rows.append([(name: "dice_mean", value: dice), (name: "hd95.1", value: hd95)])
        }
        let all = rows
        let results = LocalGroup.run(ranks: 3) { c -> [Double] in
            let parallel = DataParallel(c)
            return parallel.meanOverSamples(parallel.shard(count: all.count).map { all[$0] }).map(\.value)
        }
        let single = DataParallel().meanOverSamples(all).map(\.value)
        XCTAssertEqual(single[0], 0.25, accuracy: 1e-12)
        XCTAssertEqual(single[1], (0 + 1 + 3) / 3.0, accuracy: 1e-12)
        for r in results {
            XCTAssertEqual(r[0], single[0], accuracy: 1e-12)
            XCTAssertEqual(r[1], single[1], accuracy: 1e-12)
        }
    }

    func testGatheredRowsAreEveryRanksRowsInItemOrder() {
        // 5 items over 3 ranks; item 3 has an infinite distance and item 4 lacks "msd" (NaN).
        @Sendable func row(_ i: Int) -> [(name: String, value: Double)] {
            [("dice", 0.1 * Double(i)), ("hd95", i == 3 ? .infinity : Double(i))] + (i == 4 ? [] : [("msd", Double(10 + i))])
        }
        let names = ["dice", "hd95", "msd"]
        let results = LocalGroup.run(ranks: 3) { c -> [[Double]] in
            let parallel = DataParallel(c)
            return parallel.gatherRows(parallel.shard(count: 5).map(row), count: 5, names: names).map { $0.map(\.value) }
        }
        let single = DataParallel().gatherRows((0..<5).map(row), count: 5, names: names)
        XCTAssertEqual(single.map { $0.map(\.name) }, Array(repeating: names, count: 5))
        for rank in results.indices {
            XCTAssertEqual(results[rank].count, 5)
            for i in 0..<5 {
                let got = results[rank][i], want = single[i].map(\.value)
                XCTAssertEqual(got[0], 0.1 * Double(i), "rank \(rank), item \(i)")
                XCTAssertTrue(zip(got, want).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "rank \(rank), item \(i): \(got) vs \(want)")
            }
            XCTAssertEqual(results[rank][3][1], .infinity)
            XCTAssertTrue(results[rank][4][2].isNaN, "a missing metric is NaN")
        }
    }

    func testCollectiveHelpersAgreeOnEveryRank() {
        let results = LocalGroup.run(ranks: 3) { c -> (Bool, Bool, String, [Float], [Float]) in
            var values: [Float] = c.rank == 0 ? [1, 2, 3] : [9]
            c.broadcast(&values, root: 0)
            var sums: [Float] = [Float(c.rank), 1]
            c.allReduceAverage(&sums)
            return (c.anyRank(c.rank == 2), c.anyRank(false), c.broadcast(c.rank == 0 ? "dice_mean\nhd95.1" : "", root: 0),
                    values, sums)
        }
        for (any, none, text, values, mean) in results {
            XCTAssertTrue(any)
            XCTAssertFalse(none)
            XCTAssertEqual(text, "dice_mean\nhd95.1")
            XCTAssertEqual(values, [1, 2, 3])
            XCTAssertEqual(mean, [1, 1])
        }
    }

    func testPlainLaunchIsOneProcess() throws {
        try XCTSkipIf(Distributed.isLaunchedByMPI, "the test process itself was started by mpirun")
        let communicator = try Distributed.launch()
        XCTAssertEqual(communicator.size, 1)
        XCTAssertEqual(communicator.rank, 0)
        XCTAssertTrue(communicator is SingleProcessCommunicator)
    }
}
