public enum BlendingKind: String, CaseIterable, Sendable { case gaussian, linear, constant }

/// `inference:` — sliding-window prediction on whole volumes (validation and `morphoseg segment`).
public struct InferenceConfig: Equatable, Sendable {
    /// Window size in voxels (x, y, z order like `data.patch.size`); nil = the patch size, or whole
    /// slices in 2D.
    public var window: [Int]?
    /// Fraction of the window shared by neighbouring windows.
    public var overlap: Double
    /// Weights of each window's voxels when overlapping predictions are averaged.
    public var blending: BlendingKind
    /// Windows per forward pass.
    public var batchSize: Int

    init(_ s: ConfigSection, data: DataConfig, model: ModelConfig) throws {
        window = try s.ints("window") ?? data.patch.size
        if let window {
            let m = model.unet.sizeMultiple
            guard window.count == model.unet.dims, window.allSatisfy({ $0 > 0 && $0 % m == 0 }) else {
                throw s.error("window", "expected \(model.unet.dims) positive sizes, multiples of \(m)")
            }
            if let problem = ConfigBounds.sizeProblem(window) { throw s.error("window", problem) }
        }
        overlap = try s.double("overlap", default: 0.5, range: 0...0.95)
        blending = try s.choice("blending", default: .gaussian)
        batchSize = try s.int("batch_size", default: 2, min: 1, max: ConfigBounds.batchSize)
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("window", .optional(window)), ("overlap", .number(overlap)), ("blending", .string(blending.rawValue)),
            ("batch_size", .int(batchSize)),
        ])
    }
}
