/// One stage of a `register` run as its summary reports it: the metric it optimised, that
/// metric before and after the stage (as a loss, lower is better: −MI for `mi`, 1 − LCC for
/// `lcc`, 1 − GCC for `gcc`, MSE for `mse`), its wall time and, for a linear stage, the
/// decomposition of its transform.
public struct RegistrationStageReport: Codable, Equatable, Sendable {
    /// `rigid`, `affine` or `deformable`.
    public var stage: String
    /// `mi`, `lcc`, `gcc` or `mse`.
    public var metric: String
    public var lossBefore: Double
    public var lossAfter: Double
    /// Wall time; the first linear stage's includes building the pyramid and initialising.
    public var seconds: Double
    /// Optimiser steps over all levels (linear stages).
    public var iterations: Int?
    /// Rotation, scales, shear and translation of the stage's result (linear stages).
    public var transform: AffineDecomposition?

    public init(
        stage: String, metric: String, lossBefore: Double, lossAfter: Double, seconds: Double, iterations: Int? = nil,
        transform: AffineDecomposition? = nil
    ) {
        self.stage = stage
        self.metric = metric
        self.lossBefore = lossBefore
        self.lossAfter = lossAfter
        self.seconds = seconds
        self.iterations = iterations
        self.transform = transform
    }

    /// One line (two for a linear stage) for the terminal.
    public var summary: String {
        var line = "\(stage) stage (\(metric) loss): " + String(format: "%.4f → %.4f, %.2f s", lossBefore, lossAfter, seconds)
        if let iterations { line += ", \(iterations) steps" }
        if let transform { line += "\n  " + transform.summary }
        return line
    }
}
