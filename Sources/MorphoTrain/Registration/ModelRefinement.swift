import Foundation
import MorphoTensor

/// Refinement of a network's prediction for one pair: the network predicts a displacement `u₀`,
/// then instance optimisation (`InstanceOptimization`, one level at full resolution) runs
/// `iterations` Adam steps on the displacement starting from `u₀`,
///
///     u* = argmin_u  L_sim(F, M∘(id + u)) + λ · Grad_l2(u),   u ← u₀ at step 0,
///
/// the test-time optimisation uniGradICON and others add to a network's output. (uniGradICON's own
/// refinement fine-tunes the network's weights on the pair; optimising the field directly reaches
/// the same objective without a backward pass through the network, cheap on a CPU.)
public struct ModelRefinement: Sendable, Equatable {
    /// Adam steps at full resolution.
    public var iterations: Int
    /// Step size, similarity, smoothness weight and LCC window of the optimisation (`levels` and
    /// `iterations` are set from `iterations`; `diffeomorphic` is not supported: the network's
    /// field is a displacement, not a velocity).
    public var optimization: InstanceOptimization.Settings

    public init(iterations: Int, optimization: InstanceOptimization.Settings = .init()) {
        self.iterations = iterations
        self.optimization = optimization
        self.optimization.levels = 1
        self.optimization.iterations = [iterations]
    }

    /// What the summary reports about the network's own field and the time of each part.
    public struct Figures: Codable, Equatable, Sendable {
        /// Adam steps of the refinement.
        public var iterations: Int
        /// Fixed vs moving warped by the network's field alone (same normalisation and window as
        /// the result's `similarityAfter`).
        public var networkSimilarity: SimilarityFigures
        /// Folding fraction (0…1) of the network's field alone.
        public var networkFoldingFraction: Double
        /// Mean Dice of the network's field alone (when both label maps are given).
        public var networkMeanDice: Double?
        public var networkSeconds: Double
        public var refinementSeconds: Double

        /// One line for the terminal.
        public var summary: String {
            String(format: "refinement: %d Adam steps at full resolution from the network's field "
                   + "(network alone: LCC %.4f, folding %.3f %%%@; network %.2f s, refinement %.2f s)",
                   iterations, networkSimilarity.lcc, 100 * networkFoldingFraction,
                   networkMeanDice.map { String(format: ", mean Dice %.4f", $0) } ?? "", networkSeconds, refinementSeconds)
        }
    }

    /// - Throws: `MorphoTrainError.invalidOption` for invalid settings or `diffeomorphic`.
    public func validate() throws {
        guard iterations >= 0 else { throw MorphoTrainError.invalidOption(key: "refine", reason: "must be non-negative, got \(iterations)") }
        guard !optimization.diffeomorphic else {
            throw MorphoTrainError.invalidOption(key: "refine", reason: "refines the network's displacement; --diffeomorphic is for --optimize")
        }
        try optimization.validate()
    }

    /// The refined field `[1, nd, spatial…]` (voxels of the fixed grid) and the network's figures.
    ///
    /// - Parameters:
    ///   - fixed, moving: the pair's images normalised as `Registration.register` normalises them
    ///     for instance optimisation, `[1, 1, spatial…]` on the fixed grid.
    ///   - mask: optional `[1, 1, spatial…]` region (1 inside) the refinement's similarity is
    ///     restricted to (`register --fixed-mask`/`--moving-mask`).
    public func register(
        _ pair: RegistrationPair, model: RegistrationModel, fixed: Tensor, moving: Tensor, lccWindow: Int, mask: Tensor? = nil,
        progress: ((InstanceOptimization.Step) -> Void)? = nil
    ) throws -> (Tensor, Figures) {
        try validate()
        let start = Date()
        let predicted = try model.predict(pair)
        let networkSeconds = Date().timeIntervalSince(start)
        let refined = InstanceOptimization(optimization).register(
            fixed: fixed, moving: moving, mask: mask, initial: predicted, progress: progress)
        let refinementSeconds = Date().timeIntervalSince(start) - networkSeconds
        let network = RegistrationResult(flow: predicted, pair: pair, fixedImage: fixed, movingImage: moving, lccWindow: lccWindow)
        return (refined, Figures(
            iterations: iterations, networkSimilarity: network.quality.similarityAfter,
            networkFoldingFraction: network.quality.jacobian.foldingFraction, networkMeanDice: network.quality.meanDiceAfter,
            networkSeconds: networkSeconds, refinementSeconds: refinementSeconds))
    }
}
