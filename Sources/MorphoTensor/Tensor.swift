/// A dense, contiguous Float32 tensor with value semantics and reverse-mode autograd.
///
/// Layouts follow PyTorch: images `[N, C, H, W]` (2D) and `[N, C, D, H, W]` (3D), W fastest; the
/// mapping from NIfTI (x fastest) is `[C, D=z, H=y, W=x]`, stated once in `MorphoIO.Volume`.
/// A tensor carries no geometry (spacing, affine): images reach it from a `MorphoIO.Volume`
/// through MorphoTrain's `VoxelArray`, whose `[C, D, H, W]` data the tasks stack into a batch,
/// and predictions go back the same way (see `MorphoIO.Volume` for how the three types relate).
/// Copies share storage until one of them writes (copy-on-write). A tensor produced by a
/// differentiable operation while gradients are enabled carries a `GradNode` linking it to the
/// tape; such a tensor should stay on the thread that built the graph.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public private(set) var shape: [Int]
    public private(set) var storage: TensorStorage
    /// The autograd node: non-nil when this tensor requires a gradient.
    public internal(set) var node: GradNode?

    // MARK: Creation

    /// Wraps an existing storage (no copy). `storage.count` must equal the shape's product.
    public init(shape: [Int], storage: TensorStorage) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(storage.count == shape.reduce(1, *), "storage of \(storage.count) does not fit shape \(shape)")
        self.shape = shape
        self.storage = storage
        self.node = nil
    }

    /// A tensor filled with `value`.
    public init(shape: [Int], repeating value: Float) {
        self.init(shape: shape, storage: TensorStorage(repeating: value, count: shape.reduce(1, *)))
    }

    /// A tensor holding `data` in row-major order.
    public init(shape: [Int], data: [Float]) {
        let s = TensorStorage(uninitializedCount: shape.reduce(1, *))
        precondition(data.count == s.count, "\(data.count) values do not fit shape \(shape)")
        data.withUnsafeBufferPointer { s.pointer.initialize(from: $0.baseAddress!, count: data.count) }
        self.init(shape: shape, storage: s)
    }

    /// A 0-dimensional tensor (a scalar loss value, for example).
    public init(scalar: Float) { self.init(shape: [], data: [scalar]) }

    /// A tensor whose elements are computed by `fill(pointer)`, which must write all `count` of them.
    public init(shape: [Int], fill: (UnsafeMutablePointer<Float>) -> Void) {
        let s = TensorStorage(uninitializedCount: shape.reduce(1, *))
        fill(s.pointer)
        self.init(shape: shape, storage: s)
    }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 1) }
    public static func zeros(like t: Tensor) -> Tensor { Tensor(shape: t.shape, repeating: 0) }

    /// Normal(0, std²) entries drawn from `rng`.
    public static func randomNormal(_ shape: [Int], std: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        Tensor(shape: shape) { p in
            for i in 0..<shape.reduce(1, *) { p[i] = rng.normal() * std }
        }
    }

    /// Uniform entries in [low, high) drawn from `rng`.
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        Tensor(shape: shape) { p in
            for i in 0..<shape.reduce(1, *) { p[i] = low + (high - low) * rng.uniform() }
        }
    }

    // MARK: Properties

    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    /// Number of spatial axes of an image tensor `[N, C, spatial...]` (2 or 3).
    public var spatialRank: Int { shape.count - 2 }
    /// The spatial extent `[D, H, W]` or `[H, W]` of an image tensor.
    public var spatialShape: [Int] { Array(shape.dropFirst(2)) }
    /// Product of the spatial extents.
    public var spatialCount: Int { shape.dropFirst(2).reduce(1, *) }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item of a tensor with \(count) elements")
        return storage.pointer[0]
    }

    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    public subscript(flat i: Int) -> Float { storage.pointer[i] }

    public var description: String {
        let head = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(\(shape): [\(head)\(count > 8 ? ", …" : "")]\(requiresGrad ? ", grad" : ""))"
    }

    // MARK: Raw access

    public func withUnsafePointer<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafePointer(storage.pointer))
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    /// Writes in place, copying the storage first if another tensor shares it. In-place writes
    /// bypass autograd; use them for optimiser updates and for building values, not inside a graph.
    public mutating func withUnsafeMutablePointer<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return try body(storage.pointer)
    }

    /// True when no other tensor (or anything else) holds this tensor's storage, so writing it
    /// in place is invisible elsewhere (a backward recorded with `recordOwningGradient` may then
    /// overwrite the gradient it was handed).
    public mutating func hasUniqueStorage() -> Bool { isKnownUniquelyReferenced(&storage) }

    /// The same values under another shape with the same element count (shares storage).
    /// Differentiable.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let wild = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != wild }.map(\.element).reduce(1, *)
            resolved[wild] = known == 0 ? 0 : count / known
        }
        precondition(resolved.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        let oldShape = shape
        var result = Tensor(shape: resolved, storage: storage)
        result = Tensor.record(result, inputs: [self]) { g in [g.reshaped(oldShape)] }
        return result
    }

    /// A copy with its own storage and no autograd history.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }
}
