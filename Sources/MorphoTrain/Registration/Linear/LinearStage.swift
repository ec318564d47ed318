import Foundation
import MorphoKernels
import MorphoTensor

/// One linear stage (rigid or affine): its transform's parameters optimised coarse to fine on
/// an image pyramid, by regular-step gradient descent on the physically scaled parameters
/// (`ParameterScales`; ITK's `RegularStepGradientDescentOptimizerv4`):
///
///     q = scale ⊙ p,   q ← q − λ · ∇_q L / |∇_q L|,   λ ← λ/2 whenever ∇_q L turns by more than 90°
///
/// so λ is, to first order, how far (mm) the farthest corner of the fixed image moves per step.
/// Each level starts at λ = `initialStep` × the level's voxel size and stops when λ falls below
/// `minimumStep` × the voxel size or after `iterations[level]` steps. The stage returns the best
/// point it saw at the finest level (its start included), so it never ends worse than it began
/// on its own metric.
///
/// The similarity is evaluated on `samples` fixed voxels per level (a fixed random subset, as
/// Mattes sampling; all voxels for `lcc`, which needs whole windows): the moving image is read
/// at `y = A·(x − c) + c + t` by linear interpolation, and the parameter gradient follows from
/// the loss's gradient by the chain rule,
///
///     ∂L/∂A = Σ_v ∂L/∂m_v · ∇M(y_v) (x_v − c)ᵀ,   ∂L/∂t = Σ_v ∂L/∂m_v · ∇M(y_v),
///
/// with ∇M the exact derivative of the interpolant (world mm⁻¹). Samples whose `y` leaves the
/// moving image (or its mask) take no part.
public struct LinearStage: Sendable {
    public struct Settings: Sendable, Equatable {
        public var kind: LinearTransform.Kind
        /// The similarity: `mi` (default; any contrast), `mse`, `lcc` or `gcc`.
        public var similarity: SimilarityKind = .mi
        /// Iterations per level, coarsest first (one entry per shrink factor).
        public var iterations: [Int] = [60, 40, 20]
        /// Fixed voxels sampled per level (`lcc` uses all).
        public var samples: Int = 16384
        /// λ at the start of each level, in voxels of the level.
        public var initialStep: Double = 1
        /// λ at which a level stops, in voxels of the level.
        public var minimumStep: Double = 0.01
        /// Bins of `mi`; window of `lcc` (voxels of the level).
        public var bins: Int = 32
        public var lccWindow: Int = 5

        public init(kind: LinearTransform.Kind) { self.kind = kind }
    }

    /// What one stage did, for the `register` summary.
    public struct Outcome: Sendable {
        public var transform: LinearTransform
        /// The loss at the finest level before and after (lower is better: −MI, 1 − LCC, MSE).
        public var lossBefore: Double
        public var lossAfter: Double
        public var iterations: Int
    }

    public var settings: Settings

    public init(_ settings: Settings) { self.settings = settings }

    /// Optimises `start` (converted to this stage's kind) on `pyramid`.
    func run(_ pyramid: LinearPyramid, from start: LinearTransform) -> Outcome {
        var transform = settings.kind == .affine && start.kind == .rigid ? start.asAffine() : start
        precondition(transform.kind == settings.kind, "an affine start for a rigid stage")
        let similarity = SimilarityLoss(kind: settings.similarity, window: settings.lccWindow, bins: settings.bins)
        let finest = pyramid.levels.count - 1
        let dense = settings.similarity == .lcc
        var samplesPerLevel: [LinearSampleSet] = pyramid.levels.indices.map { level in
            LinearSampleSet(pyramid, level: level, count: dense ? nil : settings.samples)
        }
        let lossBefore = samplesPerLevel[finest].evaluate(transform, similarity: similarity, gradient: false).loss
        // The best point seen at the finest level, the start included (ITK's
        // `ReturnBestParametersAndValue`): the coarse levels' optimum can be slightly off the
        // finest level's, and the last regular steps can overshoot.
        var best = (loss: lossBefore, transform: transform)
        var total = 0
        for level in pyramid.levels.indices {
            let fixed = pyramid.levels[level].fixed
            let scales = ParameterScales(transform, fixed: fixed).values
            var step = settings.initialStep * fixed.spacing
            let stop = settings.minimumStep * fixed.spacing
            var previous: [Double]?
            for _ in 0..<settings.iterations[min(level, settings.iterations.count - 1)] {
                let (loss, gradient) = samplesPerLevel[level].evaluate(transform, similarity: similarity, gradient: true)
                if level == finest && loss < best.loss { best = (loss, transform) }
                let scaled = zip(gradient, scales).map { $0 / $1 }
                let norm = scaled.reduce(0) { $0 + $1 * $1 }.squareRoot()
                guard norm > 0, norm.isFinite else { break }
                if let previous, zip(previous, scaled).reduce(0, { $0 + $1.0 * $1.1 }) < 0 { step /= 2 }
                if step < stop { break }
                for k in transform.parameters.indices { transform.parameters[k] -= step * scaled[k] / norm / scales[k] }
                previous = scaled
                total += 1
            }
        }
        let last = samplesPerLevel[finest].evaluate(transform, similarity: similarity, gradient: false).loss
        if last < best.loss { best = (last, transform) }
        transform = best.transform
        let lossAfter = best.loss
        samplesPerLevel.removeAll()
        return Outcome(transform: transform, lossBefore: lossBefore, lossAfter: lossAfter, iterations: total)
    }
}

/// The fixed voxels one level of a linear stage measures the similarity on, with their world
/// positions and values, and the moving level to read.
struct LinearSampleSet {
    var level: LinearPyramid.Level
    /// World positions `[3 · n]` and fixed values `[n]`, fixed-mask weights `[n]`.
    var points: [Double]
    var fixedValues: Tensor
    var fixedWeights: [Float]
    /// The grid shape when every voxel is a sample (dense: `lcc` needs windows).
    var gridShape: [Int]?
    var count: Int { fixedWeights.count }

    /// `count` voxels of the fixed level drawn at random (fixed seed) among those in the fixed
    /// mask, or every voxel when `count` is nil or not smaller.
    init(_ pyramid: LinearPyramid, level index: Int, count: Int?) {
        let level = pyramid.levels[index]
        self.level = level
        let fixed = level.fixed
        let inMask = (0..<fixed.count).filter { v in level.fixedMask.map { $0.data[v] >= 0.5 } ?? true }
        var chosen: [Int]
        if let count, count < inMask.count {
            var rng = RandomGenerator(seed: 2027 + UInt64(index))
            var pool = inMask
            // Partial Fisher–Yates: the first `count` entries are a uniform random subset.
            for i in 0..<count {
                let j = i + Int(rng.next() % UInt64(pool.count - i))
                pool.swapAt(i, j)
            }
            chosen = Array(pool.prefix(count)).sorted()
            gridShape = nil
        } else if count == nil {
            chosen = Array(0..<fixed.count)
            gridShape = fixed.is2D ? [1, 1, fixed.height, fixed.width] : [1, 1, fixed.depth, fixed.height, fixed.width]
        } else {
            chosen = inMask
            gridShape = nil
        }
        var points = [Double](repeating: 0, count: 3 * chosen.count)
        var values = [Float](repeating: 0, count: chosen.count)
        var weights = [Float](repeating: 1, count: chosen.count)
        for (n, v) in chosen.enumerated() {
            let x = fixed.worldPoint(v)
            (points[3 * n], points[3 * n + 1], points[3 * n + 2]) = (x.x, x.y, x.z)
            values[n] = fixed.data[v]
            if let mask = level.fixedMask, mask.data[v] < 0.5 { weights[n] = 0 }
        }
        self.points = points
        fixedValues = Tensor(shape: gridShape ?? [1, 1, chosen.count], data: values)
        fixedWeights = weights
    }

    /// The loss at `transform` and, with `gradient`, its derivative with respect to the
    /// transform's parameters.
    func evaluate(_ transform: LinearTransform, similarity: SimilarityLoss, gradient wantGradient: Bool) -> (loss: Double, gradient: [Double]) {
        let n = count
        let a = transform.matrix, c = transform.center
        let offset = c + transform.translation - a * c
        var moving = [Float](repeating: 0, count: n)
        var weights = [Float](repeating: 0, count: n)
        var slopes = [Double](repeating: 0, count: 3 * n)
        let movingLevel = level.moving, movingMask = level.movingMask
        let maskData = movingMask?.data ?? []
        points.withUnsafeBufferPointer { pts in
            moving.withUnsafeMutableBufferPointer { mv in
                weights.withUnsafeMutableBufferPointer { wt in
                    slopes.withUnsafeMutableBufferPointer { sl in
                        fixedWeights.withUnsafeBufferPointer { fw in
                            movingLevel.data.withUnsafeBufferPointer { md in
                                maskData.withUnsafeBufferPointer { mk in
                                    Parallel.forRanges(n, grain: 2048) { range in
                                        for v in range {
                                            guard fw[v] > 0 else { continue }
                                            let x = SIMD3(pts[3 * v], pts[3 * v + 1], pts[3 * v + 2])
                                            let y = a * x + offset
                                            guard let s = movingLevel.sample(md.baseAddress!, at: y) else { continue }
                                            if let mask = movingMask {
                                                guard let inside = mask.sample(mk.baseAddress!, at: y), inside.value >= 0.5 else { continue }
                                            }
                                            mv[v] = s.value
                                            wt[v] = fw[v]
                                            (sl[3 * v], sl[3 * v + 1], sl[3 * v + 2]) = (s.gradient.x, s.gradient.y, s.gradient.z)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let shape = fixedValues.shape
        let movingT = Tensor(shape: shape, data: moving)
        let maskT = Tensor(shape: shape, data: weights)
        guard wantGradient else {
            return (Double(withoutGradients { similarity(fixedValues, movingT, mask: maskT) }.item), [])
        }
        let leaf = movingT.requiringGrad()
        let loss = similarity(fixedValues, leaf, mask: maskT)
        loss.backward()
        let dm = leaf.grad?.scalars ?? [Float](repeating: 0, count: n)
        // G = Σ ∂L/∂m_v ∇M(y_v) (x_v − c)ᵀ (9 entries) and Σ ∂L/∂m_v ∇M(y_v) (3), per chunk.
        let chunks = max(1, min(64, n / 4096))
        var partial = [Double](repeating: 0, count: chunks * 12)
        partial.withUnsafeMutableBufferPointer { acc in
            Parallel.forEach(chunks) { chunk in
                let lo = chunk * n / chunks, hi = (chunk + 1) * n / chunks
                let out = acc.baseAddress! + chunk * 12
                for v in lo..<hi where weights[v] > 0 && dm[v] != 0 {
                    let g = Double(dm[v]) * SIMD3(slopes[3 * v], slopes[3 * v + 1], slopes[3 * v + 2])
                    let d = SIMD3(points[3 * v], points[3 * v + 1], points[3 * v + 2]) - c
                    for r in 0..<3 {
                        out[r * 3] += g[r] * d.x
                        out[r * 3 + 1] += g[r] * d.y
                        out[r * 3 + 2] += g[r] * d.z
                        out[9 + r] += g[r]
                    }
                }
            }
        }
        var sums = [Double](repeating: 0, count: 12)
        for chunk in 0..<chunks { for k in 0..<12 { sums[k] += partial[chunk * 12 + k] } }
        let gradient = transform.parameterDerivatives().map { d in
            zip(sums.prefix(9), d.matrix.entries).reduce(0.0) { $0 + $1.0 * $1.1 } + sums[9] * d.translation.x + sums[10] * d.translation.y
                + sums[11] * d.translation.z
        }
        return (Double(loss.item), gradient)
    }
}
