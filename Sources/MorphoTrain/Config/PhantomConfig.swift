/// `data.phantom:` — synthetic images of nested blobs, see `Phantom`.
public struct PhantomConfig: Equatable, Sendable {
    public var dims: Int
    /// Image size in voxels, (x, y) or (x, y, z).
    public var size: [Int]
    /// Number of phantoms (training + validation).
    public var count: Int
    /// Classes including background; at most `model.unet.classes`.
    public var classes: Int
    /// Gaussian noise standard deviation, relative to the class-1 intensity.
    public var noise: Double
    /// Amplitude of the smooth multiplicative bias field (0 = none).
    public var bias: Double
    /// Voxel size in mm (x, y, z).
    public var spacing: [Double]
    public var seed: UInt64

    public init(dims: Int, size: [Int], count: Int, classes: Int, noise: Double, bias: Double, spacing: [Double], seed: UInt64) {
        self.dims = dims
        self.size = size
        self.count = count
        self.classes = classes
        self.noise = noise
        self.bias = bias
        self.spacing = spacing
        self.seed = seed
    }

    init(_ s: ConfigSection, dims modelDims: Int, classes modelClasses: Int) throws {
        dims = try s.int("dims", default: modelDims)
        guard dims == 2 || dims == 3 else { throw s.error("dims", "must be 2 or 3, got \(dims)") }
        size = try s.ints("size") ?? (dims == 2 ? [96, 96] : [48, 48, 48])
        guard size.count == dims, size.allSatisfy({ $0 >= 8 }) else {
            throw s.error("size", "expected \(dims) sizes of at least 8 voxels")
        }
        if let problem = ConfigBounds.sizeProblem(size) { throw s.error("size", problem) }
        count = try s.int("count", default: 24, min: 2, max: ConfigBounds.phantomCount)
        let voxels = size.reduce(1, *)
        guard count <= ConfigBounds.phantomVoxels / voxels else {
            throw s.error(
                "count", "\(count) phantoms of \(voxels) voxels are \(count * voxels) voxels, at most \(ConfigBounds.phantomVoxels)")
        }
        classes = try s.int("classes", default: modelClasses, min: 2)
        guard classes <= ConfigBounds.phantomClasses else {
            throw s.error(
                "classes",
                "must be at most \(ConfigBounds.phantomClasses) (phantom labels are uint8), got \(classes)"
                    + (s.contains("classes") ? "" : " from model classes"))
        }
        guard classes <= modelClasses else {
            throw s.error("classes", "\(classes) classes do not fit model.unet.classes = \(modelClasses)")
        }
        noise = try s.double("noise", default: 0.1, range: 0...10)
        bias = try s.double("bias", default: 0.2, range: 0...0.9)
        spacing = try s.doubles("spacing") ?? [1, 1, 1]
        guard spacing.count == 3, spacing.allSatisfy({ $0 > 0 }) else {
            throw s.error("spacing", "expected 3 positive voxel sizes in mm (x, y, z)")
        }
        seed = UInt64(try s.int("seed", default: 1, min: 0))
        try s.finish()
    }

    var resolved: ConfigValue {
        .map([
            ("dims", .int(dims)), ("size", .ints(size)), ("count", .int(count)), ("classes", .int(classes)),
            ("noise", .number(noise)), ("bias", .number(bias)), ("spacing", .numbers(spacing)), ("seed", .int(Int(seed))),
        ])
    }
}
