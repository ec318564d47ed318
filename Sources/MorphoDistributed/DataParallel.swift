import Foundation
import MorphoNN
import MorphoTensor

/// Synchronous data-parallel training over a `Communicator`: every rank holds the whole
/// network, computes the loss of its share of each global batch, and the gradients are
/// averaged before every optimiser step, so all ranks take the same step and keep identical
/// weights. With one process every operation here is the identity (no copy, no rounding), so a
/// trainer written against it behaves exactly as a single-process one.
///
/// Per step, the gradients of all parameters (`gatherGradients` order) and a few scalars (the
/// loss and its terms) travel in ONE fused buffer through ONE all-reduce: latency is paid once,
/// and a non-finite loss on any rank reaches every rank in the same call.
///
/// Exactness: the result equals one process on the global batch when the loss is a mean over
/// samples (per-sample Dice averaged over the batch, voxel-mean cross-entropy on equal patches,
/// per-sample instance norm). A term that averages over only some items of the batch (the
/// segmentation terms of joint training, over its labelled images) is exact too when each rank
/// scales it by `itemShare` before `backward()`. Not exact: class-balanced cross-entropy (its
/// class weights are counted over the local batch) and batch norm, which normalises over each
/// rank's local batch (there is no synchronised batch norm); its running statistics are
/// averaged by `averageBuffers`.
public final class DataParallel {
    public let communicator: any Communicator
    /// Seconds spent inside the per-step `MPI_Allreduce` of `reduceStep` (waiting for slower
    /// ranks included), summed since creation or `resetTimers()`.
    public private(set) var allReduceSeconds = 0.0
    /// Seconds spent in `reduceStep` altogether: the all-reduce plus gathering, weighting and
    /// scattering the gradients.
    public private(set) var reduceStepSeconds = 0.0
    /// Calls of `reduceStep` counted in the timers.
    public private(set) var reduceCalls = 0

    public init(_ communicator: any Communicator = SingleProcessCommunicator()) {
        self.communicator = communicator
    }

    public var rank: Int { communicator.rank }
    public var size: Int { communicator.size }
    /// True on the rank that writes checkpoints, metrics, progress and plots.
    public var isRoot: Bool { communicator.isRoot }

    public func resetTimers() {
        allReduceSeconds = 0
        reduceStepSeconds = 0
        reduceCalls = 0
    }

    // MARK: Sharding

    /// The positions `k` in `0..<batchSize` of global batch `step` that this rank computes:
    /// numbering the epoch's samples `p = step·batchSize + k`, rank r takes p = r, r+size, …
    /// (so ranks take turns across steps when `batchSize` is not a multiple of `size`). Sorted;
    /// `0..<batchSize` with one process. Sample k must be drawn from a generator of its own,
    /// seeded by (epoch seed, step, k), for the global batch not to depend on the rank count.
    ///
    /// - Precondition: `batchSize >= size` (see `checkBatchSize`), so no rank is left empty.
    public func shard(step: Int, batchSize: Int) -> [Int] {
        Self.shard(step: step, batchSize: batchSize, rank: rank, size: size)
    }

    public static func shard(step: Int, batchSize: Int, rank: Int, size: Int) -> [Int] {
        precondition(batchSize >= size, "a global batch of \(batchSize) cannot feed \(size) ranks")
        let first = ((rank - step * batchSize) % size + size) % size
        return Array(stride(from: first, to: batchSize, by: size))
    }

    /// The items `i` of `0..<count` this rank handles (`i % size == rank`): validation subjects.
    public func shard(count: Int) -> [Int] {
        Array(stride(from: rank, to: count, by: size))
    }

    /// Refuses a global batch smaller than the number of ranks.
    ///
    /// - Throws: `DistributedError.batchSmallerThanRanks` naming `key`.
    public func checkBatchSize(_ batchSize: Int, key: String) throws(DistributedError) {
        if batchSize < size { throw .batchSmallerThanRanks(key: key, batchSize: batchSize, ranks: size) }
    }

    // MARK: Weights

    /// Copies rank 0's parameters and buffers (`namedState`, one fused broadcast) to every rank,
    /// so runs start from identical weights even if initialisation differed.
    public func synchronize(_ module: any Module) {
        guard size > 1 else { return }
        let state = module.namedState.map(\.1)
        var flat = state.gatherValues()
        communicator.broadcast(&flat, root: 0)
        state.scatterValues(flat)
    }

    /// Replaces non-trainable buffers (batch-norm running statistics) by their mean over ranks;
    /// call before validation and checkpoints. Nothing happens when the module has none.
    public func averageBuffers(_ module: any Module) {
        guard size > 1 else { return }
        let buffers = module.namedState.map(\.1).filter { !$0.isTrainable }
        guard !buffers.isEmpty else { return }
        var flat = buffers.gatherValues()
        communicator.allReduceAverage(&flat)
        buffers.scatterValues(flat)
    }

    /// The largest difference of any parameter or buffer from rank 0's, the same on all ranks
    /// (0 when the ranks agree bit for bit): a check that training kept the replicas together.
    public func divergence(_ module: any Module) -> Float {
        guard size > 1 else { return 0 }
        let state = module.namedState.map(\.1)
        let mine = state.gatherValues()
        var root = mine
        communicator.broadcast(&root, root: 0)
        var worst = 0.0
        for i in mine.indices { worst = max(worst, Double(abs(mine[i] - root[i]))) }
        var v = [worst]
        v.withUnsafeMutableBufferPointer { communicator.allReduceMax($0) }
        return Float(v[0])
    }

    // MARK: Steps

    /// The all-reduce of one step, after `backward()` and before clipping and the optimiser.
    ///
    /// Each rank's gradients (of the mean loss over its `localSamples`) and `scalars` (the
    /// step's loss and terms on its samples) are weighted by `localSamples / globalSamples`,
    /// summed over ranks in one fused `Float` buffer, and the gradients written back: the
    /// result is the gradient of the mean loss over the global batch, and the scalars are the
    /// global-batch means. A rank whose loss is not finite should skip `backward()` and pass its
    /// non-finite scalars: every rank then receives non-finite scalars and stops at the same step.
    ///
    /// - Parameters:
    ///   - parameters: the trained parameters, in the same order on every rank.
    ///   - scalars: per-rank values to average (same count on every rank).
    /// - Returns: the averaged scalars (`scalars` unchanged with one process).
    public func reduceStep(_ parameters: [Parameter], scalars: [Double], localSamples: Int, globalSamples: Int) -> [Double] {
        guard size > 1 else { return scalars }
        let start = DispatchTime.now().uptimeNanoseconds
        var flat = parameters.gatherGradients()
        let gradientCount = flat.count
        flat += scalars.map { Float($0) }
        let weight = Float(localSamples) / Float(globalSamples)
        if weight != 1 {
            flat.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] *= weight } }
        }
        let reduceStart = DispatchTime.now().uptimeNanoseconds
        communicator.allReduceSum(&flat)
        allReduceSeconds += Double(DispatchTime.now().uptimeNanoseconds - reduceStart) * 1e-9
        reduceCalls += 1
        let reduced = flat[gradientCount...].map { Double($0) }
        flat.removeLast(scalars.count)
        parameters.scatterGradients(flat)
        reduceStepSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        return reduced
    }

    /// The factor by which a rank multiplies a loss term that is a mean over `localItems` items
    /// of its share of the batch (of `globalItems` in the whole global batch; e.g. the labelled
    /// images of a joint batch) before `backward()`, so that `reduceStep`, which weights every
    /// rank by `localSamples / globalSamples`, sums it into the term's mean over the global
    /// batch's items:
    ///
    ///     (localItems / globalItems) · (globalSamples / localSamples)
    ///
    /// Exactly 1 in one process (local counts are the global ones); 0 when this rank or the whole
    /// batch holds none of the items (the term is then 0 on this rank).
    ///
    /// The all-reduce cannot re-weight afterwards: one gradient mixes terms that average over
    /// different counts (per pair, per labelled image), so every rank must know `globalItems`
    /// before its backward pass. Tasks count them from the same per-sample streams that make the
    /// global batch (a pure function of the epoch seed and step), which needs no communication.
    public static func itemShare(localItems: Int, globalItems: Int, localSamples: Int, globalSamples: Int) -> Float {
        precondition(localItems <= globalItems && localSamples > 0 && localSamples <= globalSamples,
                     "\(localItems) of \(globalItems) items on \(localSamples) of \(globalSamples) samples")
        guard localItems > 0 else { return 0 }
        if localItems == globalItems && localSamples == globalSamples { return 1 }
        return Float((Double(localItems) / Double(globalItems)) * (Double(globalSamples) / Double(localSamples)))
    }

    // MARK: Metrics

    /// Means over all ranks' samples of named metrics, given one row per sample (validation
    /// subject) on each rank. Each metric is the mean of its finite values; +∞ when no sample has
    /// a finite one (a surface distance with an empty prediction everywhere). The names and
    /// their order are rank 0's (rank 0 holds sample 0 whenever any rank has samples); an empty
    /// list when rank 0 has no rows.
    public func meanOverSamples(_ rows: [[(name: String, value: Double)]]) -> [(name: String, value: Double)] {
        let local = rows.first?.map(\.name) ?? []
        let names: [String]
        if size > 1 {
            let joined = communicator.broadcast(local.joined(separator: "\n"), root: 0)
            names = joined.isEmpty ? [] : joined.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        } else {
            names = local
        }
        guard !names.isEmpty else { return [] }
        let index = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        // sums then counts, one all-reduce.
        var totals = [Double](repeating: 0, count: 2 * names.count)
        for row in rows {
            for (name, value) in row where value.isFinite {
                guard let j = index[name] else { continue }
                totals[j] += value
                totals[names.count + j] += 1
            }
        }
        communicator.allReduceSum(&totals)
        return names.enumerated().map { j, name in
            let count = totals[names.count + j]
            return (name, count > 0 ? totals[j] / count : .infinity)
        }
    }

    /// Every rank's per-item rows, on every rank and in item order: rank r holds the rows of
    /// items r, r + size, … (`shard(count:)`), their metrics named by `names` (rank 0's order, as
    /// `meanOverSamples` returns them). A metric a row lacks is NaN. One all-reduce of
    /// `count × names.count` doubles (each cell is non-zero on one rank only, so the sum is that
    /// rank's value, infinities and NaN included); in one process the rows come back as given.
    ///
    /// - Precondition: `rows.count` is this rank's share of `count` items.
    public func gatherRows(_ rows: [[(name: String, value: Double)]], count: Int, names: [String]) -> [[(name: String, value: Double)]] {
        let mine = shard(count: count)
        precondition(rows.count == mine.count, "\(rows.count) rows for \(mine.count) items of rank \(rank)")
        let index = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        var cells = [Double](repeating: 0, count: count * names.count)
        for (row, item) in zip(rows, mine) {
            var values = [Double](repeating: .nan, count: names.count)
            for (name, value) in row { if let j = index[name] { values[j] = value } }
            for j in names.indices { cells[item * names.count + j] = values[j] }
        }
        if size > 1 { communicator.allReduceSum(&cells) }
        return (0..<count).map { i in names.enumerated().map { j, name in (name, cells[i * names.count + j]) } }
    }

    /// Rank 0's named metrics on every rank, exactly (for results only rank 0 computed).
    public func broadcastMetrics(_ metrics: [(name: String, value: Double)]) -> [(name: String, value: Double)] {
        guard size > 1 else { return metrics }
        let joined = communicator.broadcast(metrics.map(\.name).joined(separator: "\n"), root: 0)
        let names = joined.isEmpty ? [] : joined.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var values = isRoot ? metrics.map(\.value) : [Double](repeating: 0, count: names.count)
        values.withUnsafeMutableBytes { communicator.broadcast($0, root: 0) }
        return zip(names, values).map { ($0, $1) }
    }

    // MARK: Failure

    /// Ends a run after `error` escaped on this rank. With one process it returns `error` for
    /// the caller to throw as before. With several ranks it does not return:
    ///
    /// - `collective` errors are thrown by every rank at the same point (a non-finite loss,
    ///   which `reduceStep` shares): rank 0 prints the message, every rank leaves MPI cleanly
    ///   and exits with status 1;
    /// - any other error may be this rank's alone (an unreadable file, a full disk): it is
    ///   printed with the rank and `MPI_Abort` stops all ranks (other ranks than 0 wait half a
    ///   second first, so an error every rank meets is printed once, by rank 0). Checkpoints are written to a temporary
    ///   file and renamed, so one interrupted on rank 0 leaves the previous one intact.
    public func stop(after error: any Error, collective: Bool) -> any Error {
        guard size > 1 else { return error }
        if collective {
            if isRoot { writeToStandardError("error: \(error)\n") }
            communicator.finalize()
            exit(1)
        }
        // Rank 0 usually meets the same error (a config or data problem every rank reads alike);
        // its abort ends this rank during the pause, so the message is printed once.
        if !isRoot { usleep(500_000) }
        communicator.abort("\(error)", code: 1)
    }
}
