import MorphoLosses
import MorphoNN
import MorphoTensor

/// What the generic `Trainer` trains: segmentation here, registration and joint training in the
/// same way. A task owns its network(s), its data and its loss; the trainer owns the loop, the
/// optimiser, the schedules, checkpoints, early stopping, logs and plots.
///
/// Contract: `makeBatch` must be a pure function of its arguments (all randomness drawn from the
/// generator it builds from `seed` and `step`), because batches are made ahead on background
/// threads and a resumed run must draw the same ones.
public protocol TrainingTask: AnyObject {
    associatedtype Batch: Sendable

    /// One line for the run's log: what is trained on what (data counts, network sizes).
    var overview: String { get }

    /// The module whose state is checkpointed and optimised (a container module when a task
    /// trains several networks).
    var model: any Module { get }

    /// The batch maker handed to the background loader: batch `step` of the epoch whose stream
    /// seed is `seed`.
    var makeBatch: @Sendable (_ seed: UInt64, _ step: Int) -> Batch { get }

    /// Forward pass and loss of one batch at `epoch` (0-based): the differentiable total and
    /// each named term with its weight (see `WeightedLoss`).
    func loss(_ batch: Batch, epoch: Int) -> WeightedLossValue

    /// Validation metrics on held-out data (empty when there is none). Called with gradients
    /// off and the model in evaluation mode.
    func validate() throws -> [(name: String, value: Double)]

    /// The validation metric that selects the best checkpoint (higher is better).
    var scoreName: String { get }

    /// Draws the task's picture of the latest validation (e.g. a mid-slice overlay).
    func drawOverlay(to path: String) throws

    /// Scalars worth logging for `epoch` besides the loss terms (segmentation: the boundary
    /// weight `alpha`). Default: none.
    func epochScalars(epoch: Int) -> [(name: String, value: Double)]

    /// Extra `__metadata__` entries written into every checkpoint of the run (e.g. a task's own
    /// config section), read back as `Checkpoint.extraMetadata`. Keys must not collide with the
    /// checkpoint's own (`format`, `epoch`, `config`, …). Default: none.
    var checkpointMetadata: [String: String] { get }

    /// Data-parallel batches (`mpirun -np N morphoseg train`): the samples at `positions` — sorted
    /// indices into the global batch of `training.batch_size` — of batch `step`. Sample k must be
    /// drawn from a generator of its own, seeded by (`seed`, `step`, k), so that the global batch
    /// is the same for any number of ranks. When present the trainer uses it in one process too
    /// (positions `0..<batch_size`). Default nil: the task trains in one process only.
    var makeShard: (@Sendable (_ seed: UInt64, _ step: Int, _ positions: [Int]) -> Batch)? { get }

    /// Data-parallel validation: metrics of the held-out subjects `i` with `i % size == rank`, one
    /// row per subject with the same names in the same order. The trainer averages all ranks'
    /// rows (per metric, the mean of its finite values; +∞ when none is finite), which must equal
    /// `validate()`. Default nil: rank 0 runs `validate()` alone and shares the result.
    func validateShard(rank: Int, size: Int) throws -> [[(name: String, value: Double)]]?

    /// The names of the held-out cases, in the order of `validateShard(rank: 0, size: 1)`'s
    /// rows: with them a one-process run keeps each case's metrics (`ValidationCases`,
    /// `report.html`'s per-case table). Default: none (no per-case table).
    var validationCaseNames: [String] { get }
}

extension TrainingTask {
    public var overview: String { "training \(Self.self)" }
    public func epochScalars(epoch: Int) -> [(name: String, value: Double)] { [] }
    public var checkpointMetadata: [String: String] { [:] }
    public var makeShard: (@Sendable (_ seed: UInt64, _ step: Int, _ positions: [Int]) -> Batch)? { nil }
    public func validateShard(rank: Int, size: Int) throws -> [[(name: String, value: Double)]]? { nil }
    public var validationCaseNames: [String] { [] }
}
