import MorphoDistributed
import MorphoLosses
import MorphoNN
import MorphoTensor

/// One optimisation step, the only one in MorphoSeg: the `Trainer`, the `bench` step cases and
/// `dataparallel-probe` all run this, so a bench row measures what training runs.
///
/// In order: the local loss (forward), `backward()` when it is finite, one all-reduce of the
/// gradients, the total and the terms over the ranks of `parallel` (a no-op in one process),
/// global-norm clipping at `gradClip` (0: the norm is measured, nothing is clipped), the
/// optimiser's update, and the gradients cleared for the next step.
///
/// A non-finite total on any rank reaches every rank through the all-reduce, so all stop at the
/// same step; so does a non-finite gradient norm.
public final class TrainingStep {
    public let model: any Module
    public let optimizer: any Optimizer
    public let parallel: DataParallel
    /// Largest global gradient norm (L2 over all parameters); 0 turns clipping off.
    public let gradClip: Double
    private let parameters: [Parameter]

    public init(model: any Module, optimizer: any Optimizer, gradClip: Double, parallel: DataParallel = DataParallel()) {
        self.model = model
        self.optimizer = optimizer
        self.gradClip = gradClip
        self.parallel = parallel
        parameters = model.parameters
    }

    /// The optimiser and clipping that `training:` names, over `model`'s parameters.
    public convenience init(model: any Module, training: TrainingConfig, parallel: DataParallel = DataParallel()) {
        self.init(
            model: model, optimizer: Self.makeOptimizer(training.optimizer, parameters: model.namedParameters),
            gradClip: training.gradClip, parallel: parallel)
    }

    static func makeOptimizer(_ c: OptimizerConfig, parameters: [(String, Parameter)]) -> any Optimizer {
        let lr = Float(c.lr), wd = Float(c.weightDecay)
        switch c.kind {
        case .adam: return Adam(parameters, learningRate: lr, beta1: Float(c.betas[0]), beta2: Float(c.betas[1]), weightDecay: wd)
        case .adamw: return AdamW(parameters, learningRate: lr, beta1: Float(c.betas[0]), beta2: Float(c.betas[1]), weightDecay: wd)
        case .sgd: return SGD(parameters, learningRate: lr, momentum: Float(c.momentum), weightDecay: wd)
        }
    }

    /// What one step reached: the global batch's total and terms (averaged over the ranks) and
    /// the gradient norm before clipping.
    public struct Outcome {
        public var total: Float
        public var terms: [LossTermValue]
        public var gradientNorm: Float
    }

    /// Runs one step on the loss `loss()` computes for this rank's `localSamples` of the
    /// `globalSamples` in the global batch (equal in one process).
    ///
    /// - Parameters:
    ///   - epoch, step: 0-based, for the error message only.
    /// - Throws: `MorphoTrainError.nonFiniteLoss` (1-based epoch and step) when the global loss
    ///   or the gradient norm is not finite; the parameters are then unchanged.
    @discardableResult
    public func callAsFunction(
        epoch: Int = 0, step: Int = 0, localSamples: Int = 1, globalSamples: Int = 1, _ loss: () -> WeightedLossValue
    ) throws -> Outcome {
        let value = loss()
        if value.total.item.isFinite { value.total.backward() }
        let reduced = parallel.reduceStep(
            parameters, scalars: [Double(value.total.item)] + value.terms.map { Double($0.value) },
            localSamples: localSamples, globalSamples: globalSamples)
        let total = Float(reduced[0])
        var terms = value.terms
        for i in terms.indices { terms[i].value = Float(reduced[i + 1]) }
        guard total.isFinite else {
            optimizer.zeroGrad()
            throw MorphoTrainError.nonFiniteLoss(epoch: epoch + 1, step: step + 1, terms: Self.describe(terms))
        }
        let norm = clipGradientNorm(parameters, maxNorm: gradClip > 0 ? Float(gradClip) : .infinity)
        guard norm.isFinite else {
            optimizer.zeroGrad()
            throw MorphoTrainError.nonFiniteLoss(epoch: epoch + 1, step: step + 1, terms: "gradient norm \(norm); " + Self.describe(terms))
        }
        optimizer.step()
        optimizer.zeroGrad()
        return Outcome(total: total, terms: terms, gradientNorm: norm)
    }

    static func describe(_ terms: [LossTermValue]) -> String {
        terms.map { "\($0.name) \($0.value)" }.joined(separator: ", ")
    }
}
