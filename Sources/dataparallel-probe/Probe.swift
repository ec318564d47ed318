import Foundation
import MorphoDistributed
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import MorphoTrain

/// `dataparallel-probe`: data-parallel training steps outside the trainer, to check and measure
/// MorphoDistributed under `mpirun` (one process without it).
///
///     dataparallel-probe equivalence --steps 3 --batch 4 --output weights.f32 [--nan-rank R --nan-step S]
///         trains a small 3D U-Net on synthetic 16³ patches with the global batch sharded over
///         the ranks; rank 0 writes the final parameters (raw little-endian float32,
///         `gatherParameters` order) and prints one JSON line with the replicas' divergence
///         (and "step k of N" on stderr after each step, the progress its tests watch).
///     dataparallel-probe throughput --network unet|voxelmorph|joint [--local-batch 1 --steps 4 --warmup 1 --size S]
///         times whole steps (local forward/backward, the fused all-reduce, Adam) with
///         `Parallel.threads` = 1 per rank; rank 0 prints one JSON line (samples/s over all
///         ranks, all-reduce ms per step and its share of the step). `joint` is `JointTask`'s
///         step (U-Net + DisplacementNet, all joint terms) on S³ phantoms (default 32), random
///         pairs with 3 of 10 training images labelled, each rank on its shard of the global batch.
@main
struct Probe {
    static func main() {
        let communicator: any Communicator
        do {
            communicator = try Distributed.launch()
        } catch {
            writeError("error: \(error)")
            exit(1)
        }
        let parallel = DataParallel(communicator)
        var args = Array(CommandLine.arguments.dropFirst())
        guard let mode = args.first else { usage() }
        args.removeFirst()
        let options = Options(args)
        switch mode {
        case "equivalence": equivalence(parallel, options)
        case "throughput": throughput(parallel, options)
        case "info":
            if parallel.isRoot {
                print("{\"ranks\":\(parallel.size),\"mpi_built\":\(Distributed.isMPIBuilt),\"launched_by_mpi\":\(Distributed.isLaunchedByMPI)}")
            }
        default: usage()
        }
        communicator.finalize()
    }

    static func usage() -> Never {
        writeError("usage: dataparallel-probe equivalence|throughput|info [--option value ...]")
        exit(2)
    }

    // MARK: equivalence

    /// A labelled ball in noise: sample k of step s, drawn from its own generator so the global
    /// batch is the same for any number of ranks.
    static func sample(seed: UInt64, step: Int, position: Int, size: Int) -> (image: [Float], label: [Float]) {
        var rng = RandomGenerator(seed: seed &+ UInt64(step) &* 1_000_003 &+ UInt64(position) &* 7919)
        let centre = (0..<3).map { _ in Double(size) * (0.3 + 0.4 * Double(rng.uniform())) }
        let radius = Double(size) * (0.15 + 0.15 * Double(rng.uniform()))
        var image = [Float](repeating: 0, count: size * size * size)
        var label = image
        for z in 0..<size { for y in 0..<size { for x in 0..<size {
            let d = [Double(z), Double(y), Double(x)]
            let r2 = zip(d, centre).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            let i = (z * size + y) * size + x
            let inside = r2 < radius * radius
            label[i] = inside ? 1 : 0
            image[i] = (inside ? 1 : 0) + 0.5 * rng.normal()
        } } }
        return (image, label)
    }

    static func equivalence(_ parallel: DataParallel, _ options: Options) {
        Parallel.threads = options.int("threads", 1)
        let steps = options.int("steps", 3), batch = options.int("batch", 4), size = options.int("size", 16)
        let nanRank = options.int("nan-rank", -1), nanStep = options.int("nan-step", -1)
        do { try parallel.checkBatchSize(batch, key: "--batch") } catch { fail(parallel, error, collective: true) }
        var rng = RandomGenerator(seed: 7)
        let net = UNet(spatialRank: 3, inChannels: 1, outChannels: 2, channels: [4, 8, 16], rng: &rng)
        parallel.synchronize(net)
        // SGD by default: its step is linear in the gradient, so the replicas' rounding
        // differences stay at float level. Adam divides by √v, which turns the ~1e-9 noise
        // gradient of a conv bias followed by instance norm (exactly 0 in exact arithmetic)
        // into ±learning-rate steps, in one process as in several.
        let optimizer: any Optimizer = options.string("optimizer") == "adam"
            ? Adam(net.namedParameters, learningRate: 1e-2)
            : SGD(net.namedParameters, learningRate: 0.1, momentum: 0.9)
        let loss = DiceCELoss()
        let trainingStep = TrainingStep(model: net, optimizer: optimizer, gradClip: 0, parallel: parallel)
        var losses: [Double] = []
        for step in 0..<steps {
            let positions = parallel.shard(step: step, batchSize: batch)
            var images: [Float] = [], labels: [Float] = []
            for k in positions {
                let s = sample(seed: 11, step: step, position: k, size: size)
                images += s.image
                labels += s.label
            }
            let n = positions.count
            do {
                let outcome = try trainingStep(step: step, localSamples: n, globalSamples: batch) {
                    let value = loss(logits: net(Tensor(shape: [n, 1, size, size, size], data: images)),
                                     labels: Tensor(shape: [n, 1, size, size, size], data: labels))
                    // --nan-rank/--nan-step: this rank's loss turns NaN at that step.
                    return WeightedLossValue(total: step == nanStep && parallel.rank == nanRank ? value * Float.nan : value)
                }
                losses.append(Double(outcome.total))
                // A progress line per step: the tests bound a job by its progress, not by a clock.
                if parallel.isRoot { FileHandle.standardError.write(Data("step \(step + 1) of \(steps)\n".utf8)) }
            } catch {
                fail(parallel, ProbeError.nonFiniteLoss(step: step + 1), collective: true)
            }
        }
        let divergence = parallel.divergence(net)
        if parallel.isRoot {
            if let path = options.string("output") {
                let flat = net.gatherParameters()
                let data = flat.withUnsafeBufferPointer { Data(buffer: $0) }
                do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
                    fail(parallel, ProbeError.output(path: path, message: error.localizedDescription), collective: false)
                }
            }
            let lossText = losses.map { String(format: "%.7f", $0) }.joined(separator: ",")
            print("{\"ranks\":\(parallel.size),\"steps\":\(steps),\"batch\":\(batch),\"losses\":[\(lossText)],\"divergence\":\(divergence)}")
        }
    }

    // MARK: throughput

    static func throughput(_ parallel: DataParallel, _ options: Options) {
        Parallel.threads = options.int("threads", 1)
        let localBatch = options.int("local-batch", 1)
        let steps = options.int("steps", 4), warmup = options.int("warmup", 1)
        let network = options.string("network") ?? "unet"
        var rng = RandomGenerator(seed: 1)
        let model: any Module
        let stepLoss: () -> WeightedLossValue
        switch network {
        case "unet":
            let size = options.int("size", 64)
            let net = UNet(spatialRank: 3, inChannels: 1, outChannels: 2, channels: [16, 32, 64, 128], rng: &rng)
            let image = Tensor.randomNormal([localBatch, 1, size, size, size], using: &rng)
            let labels = Tensor(shape: [localBatch, 1, size, size, size]) { p in
                for i in 0..<(localBatch * size * size * size) { p[i] = (i / (size * size)) % size > size / 2 ? 1 : 0 }
            }
            let loss = DiceCELoss()
            model = net
            stepLoss = { WeightedLossValue(total: loss(logits: net(image), labels: labels)) }
        case "voxelmorph":
            let shape = [80, 96, 80]
            let net = DisplacementNet(spatialRank: 3, rng: &rng)
            let moving = Tensor.randomUniform([localBatch, 1] + shape, using: &rng)
            let fixed = Tensor.randomUniform([localBatch, 1] + shape, using: &rng)
            let ncc = LocalNCC(window: 9), smooth = GradientSmoothnessLoss()
            let transformer = SpatialTransformer()
            model = net
            stepLoss = {
                let flow = net(moving: moving, fixed: fixed)
                return WeightedLossValue(total: ncc(transformer(moving, flow: flow), fixed) + smooth(flow) * 0.01)
            }
        case "joint":
            let size = options.int("size", 32)
            let task: JointTask
            do { task = try JointTask(config: jointConfig(size: size, batch: localBatch * parallel.size)) } catch {
                fail(parallel, error, collective: true)
            }
            let batch = task.makeShard!(3, 0, parallel.shard(step: 0, batchSize: localBatch * parallel.size))
            model = task.model
            stepLoss = { task.loss(batch, epoch: 0) }
        default:
            fail(parallel, ProbeError.option("--network", "unet, voxelmorph or joint, not \(network)"), collective: true)
        }
        parallel.synchronize(model)
        let globalBatch = localBatch * parallel.size
        let trainingStep = TrainingStep(
            model: model, optimizer: Adam(model.namedParameters, learningRate: 1e-4), gradClip: 0, parallel: parallel)
        func step() {
            do { try trainingStep(localSamples: localBatch, globalSamples: globalBatch, stepLoss) } catch {
                fail(parallel, error, collective: true)
            }
        }
        for _ in 0..<warmup { step() }
        parallel.communicator.barrier()
        parallel.resetTimers()
        let start = Date(), cpuStart = cpuSeconds()
        for _ in 0..<steps { step() }
        let cpu = cpuSeconds() - cpuStart
        parallel.communicator.barrier()
        let seconds = Date().timeIntervalSince(start)
        // Per-rank all-reduce times differ (a rank that finishes its backward first waits):
        // report the mean over ranks and the least, which is closest to the transfer itself.
        var times = [parallel.allReduceSeconds, parallel.reduceStepSeconds]
        parallel.communicator.allReduceSum(&times)
        var least = [-parallel.allReduceSeconds]
        least.withUnsafeMutableBufferPointer { parallel.communicator.allReduceMax($0) }
        // The transfer alone: the same fused buffer reduced right after a barrier, so no rank
        // waits for another's backward pass.
        var fused = [Float](repeating: 1, count: model.parameterCount + 1)
        var transfer = 0.0
        let repeats = 20
        for _ in 0..<repeats {
            parallel.communicator.barrier()
            let t0 = DispatchTime.now().uptimeNanoseconds
            parallel.communicator.allReduceSum(&fused)
            transfer += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        }
        var transferAll = [transfer, cpu]
        parallel.communicator.allReduceSum(&transferAll)
        if parallel.isRoot {
            let ranks = Double(parallel.size)
            let stepMs = seconds / Double(steps) * 1000
            let reduceMs = times[0] / ranks / Double(steps) * 1000
            let minReduceMs = -least[0] / Double(steps) * 1000
            let syncMs = times[1] / ranks / Double(steps) * 1000
            let transferMs = transferAll[0] / ranks / Double(repeats) * 1000
            let cpuMs = transferAll[1] / ranks / Double(steps) * 1000
            func f(_ v: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", v) }
            print("{\"network\":\"\(network)\",\"ranks\":\(parallel.size),\"threads_per_rank\":\(Parallel.threads),"
                + "\"local_batch\":\(localBatch),\"parameters\":\(model.parameterCount),\"steps\":\(steps),"
                + "\"step_ms\":\(f(stepMs, 1)),\"cpu_ms_per_rank\":\(f(cpuMs, 1)),\"samples_per_s\":\(f(Double(globalBatch) / (seconds / Double(steps)))),"
                + "\"allreduce_ms\":\(f(reduceMs)),\"allreduce_min_ms\":\(f(minReduceMs)),\"reduce_step_ms\":\(f(syncMs)),"
                + "\"allreduce_share\":\(f(reduceMs / stepMs, 4)),\"reduce_step_share\":\(f(syncMs / stepMs, 4)),"
                + "\"allreduce_alone_ms\":\(f(transferMs)),\"allreduce_alone_share\":\(f(transferMs / stepMs, 4))}")
        }
    }

    /// The joint run the `joint` throughput case steps: the networks of `Configs/joint-3d.yaml`
    /// on `size`³ phantoms, global batch `batch`.
    static func jointConfig(size: Int, batch: Int) throws -> JointRunConfig {
        try JointRunConfig(yaml: """
            name: probe-joint
            model:
              kind: joint
              unet: {dims: 3, channels: [8, 16, 32], strides: [2, 2], classes: 3}
            data:
              phantom: {size: [\(size), \(size), \(size)], count: 12, noise: 0.1, bias: 0.1, seed: 1}
              validation: {fraction: 0.2}
              normalization: {kind: percentile}
            loss:
              regional: dice_ce
              boundary: {enabled: true}
              prl: {weight: 0.000005, K: 0.5}
              schedule: {kind: rebalance, alpha0: 0.01, delta: 0.01, floor: 0.1}
            registration:
              pairs: random
              validation_pairs: 2
              network: {encoder: [8, 16, 16], decoder: [16, 16, 16, 8], integration_steps: 0}
              loss:
                similarity: {kind: lcc, window: 9, weight: 1}
                smoothness: {kind: grad_l2, weight: 1}
            joint:
              labelled_images: 3
              coupling: {weight: 1}
            training:
              batch_size: \(batch)
            """, file: "probe-joint")
    }

    // MARK: plumbing

    /// User + system CPU time of this process (all threads; MPI's busy polling included).
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6
    }

    static func fail(_ parallel: DataParallel, _ error: any Error, collective: Bool) -> Never {
        let e = parallel.stop(after: error, collective: collective)
        writeError("error: \(e)")
        exit(1)
    }

    static func writeError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

enum ProbeError: Error, CustomStringConvertible {
    case nonFiniteLoss(step: Int)
    case output(path: String, message: String)
    case option(String, String)

    var description: String {
        switch self {
        case .nonFiniteLoss(let step): "the loss is not finite at step \(step); stopped on every rank"
        case .output(let path, let message): "\(path): \(message)"
        case .option(let name, let message): "\(name): expected \(message)"
        }
    }
}

/// `--name value` pairs.
struct Options {
    var values: [String: String] = [:]

    init(_ args: [String]) {
        var i = 0
        while i + 1 < args.count {
            if args[i].hasPrefix("--") { values[String(args[i].dropFirst(2))] = args[i + 1] }
            i += 2
        }
    }

    func string(_ name: String) -> String? { values[name] }

    func int(_ name: String, _ fallback: Int) -> Int {
        guard let text = values[name] else { return fallback }
        guard let v = Int(text) else {
            FileHandle.standardError.write(Data("error: --\(name): expected an integer, not \(text)\n".utf8))
            exit(2)
        }
        return v
    }
}
