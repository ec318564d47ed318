import MorphoLosses
import MorphoTensor

/// Registration of one pair by optimising its displacement field directly — no network — the
/// way classical tools (ANTs, NiftyReg, deedsBCV-style instance optimisation) work, with the
/// losses a registration network trains on:
///
///     u* = argmin_u  L_sim(F, M∘(id + u)) + λ · Grad_l2(u)
///
/// coarse to fine over `levels` resolutions (each level halves the grid of the next, images
/// downsampled by linear resampling over the same extent), `iterations[l]` Adam steps on `u` at
/// level `l` (coarsest first), the field upsampled (and its voxel values scaled by the grid ratio)
/// to initialise the next level.
public struct InstanceOptimization: Sendable {
    public struct Settings: Sendable, Equatable {
        /// Resolution levels (1 = full resolution only).
        public var levels: Int = 3
        /// Adam steps per level, coarsest first (`levels` entries).
        public var iterations: [Int] = [200, 100, 50]
        /// Adam step size, voxels of the current level.
        public var learningRate: Float = 0.25
        /// λ, the weight of the grad-l2 smoothness term.
        public var smoothness: Float = 1
        public var similarity: SimilarityKind = .lcc
        /// LCC window (odd, voxels of the current level).
        public var lccWindow: Int = 7

        public init() {}

        /// - Throws: `RegistrationError.invalidOption` naming the setting.
        public func validate() throws {
            guard levels >= 1 && levels <= 8 else { throw RegistrationError.invalidOption(key: "levels", reason: "must be in 1...8, got \(levels)") }
            guard iterations.count == levels else {
                throw RegistrationError.invalidOption(key: "iterations", reason: "\(iterations.count) values for \(levels) levels")
            }
            guard iterations.allSatisfy({ $0 >= 0 }) else { throw RegistrationError.invalidOption(key: "iterations", reason: "must be non-negative") }
            guard learningRate > 0, learningRate.isFinite else { throw RegistrationError.invalidOption(key: "learning-rate", reason: "must be positive") }
            guard smoothness >= 0, smoothness.isFinite else { throw RegistrationError.invalidOption(key: "smoothness", reason: "must be non-negative") }
            guard lccWindow >= 1 && lccWindow % 2 == 1 else {
                throw RegistrationError.invalidOption(key: "lcc-window", reason: "must be odd and positive, got \(lccWindow)")
            }
        }
    }

    /// One optimisation step's figures, for progress reports.
    public struct Step: Sendable {
        public var level: Int
        public var iteration: Int
        /// `[D, H, W]` (or `[H, W]`) of the level.
        public var shape: [Int]
        public var similarity: Float
        public var smoothness: Float
    }

    public var settings: Settings

    public init(_ settings: Settings = Settings()) { self.settings = settings }

    /// The field `[1, nd, spatial…]` (voxels of the full grid) registering `moving` onto `fixed`.
    ///
    /// - Parameters:
    ///   - fixed, moving: `[1, 1, spatial…]` on the same grid, intensities normalised alike.
    ///   - progress: called after every step.
    public func register(fixed: Tensor, moving: Tensor, progress: ((Step) -> Void)? = nil) -> Tensor {
        precondition(fixed.shape == moving.shape && fixed.shape[0] == 1 && fixed.shape[1] == 1,
                     "instance optimisation of \(fixed.shape) and \(moving.shape): one single-channel pair on one grid")
        let spatial = fixed.spatialShape
        let nd = spatial.count
        let similarity = SimilarityLoss(kind: settings.similarity, window: settings.lccWindow)
        let smooth = GradientSmoothnessLoss(penalty: .l2)
        var flow: Tensor?
        for level in 0..<settings.levels {
            let factor = 1 << (settings.levels - 1 - level)
            let shape = spatial.map { max(1, ($0 + factor - 1) / factor) }
            let f = Pyramid.resize(fixed, to: shape)
            let m = Pyramid.resize(moving, to: shape)
            var u = flow.map { Pyramid.resizeFlow($0, to: shape) } ?? Tensor.zeros([1, nd] + shape)
            var params = [u.requiringGrad()]
            let adam = InterimAdam(lr: settings.learningRate)
            for iteration in 0..<settings.iterations[level] {
                let field = params[0]
                let sim = similarity(f, InterimOps.warp(m, field))
                let reg = smooth(field)
                let loss = settings.smoothness > 0 ? sim + reg * settings.smoothness : sim
                loss.backward()
                adam.step(&params)
                progress?(Step(level: level, iteration: iteration, shape: shape, similarity: sim.item, smoothness: reg.item))
            }
            u = params[0].detached()
            flow = u
        }
        return flow!
    }
}

/// Image and field resizing between pyramid levels: linear resampling over the same extent
/// (voxel centres at `(i + 0.5)·n/m − 0.5`, `VoxelArray.resampled(toShape:)`).
enum Pyramid {
    /// `[N, C, spatial…]` resized to `shape` per item and channel.
    static func resize(_ x: Tensor, to shape: [Int]) -> Tensor {
        let spatial = x.spatialShape
        if spatial == shape { return x.detached() }
        let dhw = spatial.count == 3 ? spatial : [1] + spatial
        let target = shape.count == 3 ? shape : [1] + shape
        let planes = x.shape[0] * x.shape[1]
        let array = VoxelArray(data: x.scalars, channels: planes, shape: dhw, spacing: [1, 1, 1])
        let out = array.resampled(toShape: target, linear: true)
        return Tensor(shape: Array(x.shape.prefix(2)) + shape, data: out.data)
    }

    /// A displacement field `[N, nd, spatial…]` (voxels) on another grid over the same extent:
    /// resampled linearly, channel `i` multiplied by the ratio of the grids along axis `i`.
    static func resizeFlow(_ flow: Tensor, to shape: [Int]) -> Tensor {
        let spatial = flow.spatialShape
        if spatial == shape { return flow.detached() }
        var out = resize(flow, to: shape)
        let count = shape.reduce(1, *)
        let nd = shape.count
        out.withUnsafeMutablePointer { p in
            for b in 0..<flow.shape[0] {
                for c in 0..<nd {
                    let ratio = Float(shape[c]) / Float(spatial[c])
                    let base = p + (b * nd + c) * count
                    for v in 0..<count { base[v] *= ratio }
                }
            }
        }
        return out
    }
}
