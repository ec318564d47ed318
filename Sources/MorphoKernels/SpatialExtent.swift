/// The spatial size of one image plane or volume as kernels see it: `[D, H, W]`, W fastest.
///
/// Every kernel in this module works on contiguous `[N, C, D, H, W]` memory (the layout of
/// MorphoIO's `Volume`: NIfTI x-fastest maps to `[C, D=z, H=y, W=x]`). 2D images `[N, C, H, W]`
/// are the same memory with `D = 1`; `rank` says how many spatial axes the data really has,
/// which matters where it changes the meaning of an argument (a 2D displacement field has two
/// channels, a 2D pooling window does not extend along D).
public struct SpatialExtent: Hashable, Sendable, CustomStringConvertible {
    /// Slices along z (1 for 2D data).
    public var d: Int
    /// Rows (y).
    public var h: Int
    /// Columns (x), contiguous in memory.
    public var w: Int
    /// Number of spatial axes: 2 (`[H, W]`) or 3 (`[D, H, W]`).
    public var rank: Int

    /// A 2D extent `[H, W]` (`d = 1`, `rank = 2`).
    public init(h: Int, w: Int) {
        precondition(h > 0 && w > 0, "SpatialExtent: sizes must be positive, got [\(h), \(w)]")
        self.d = 1; self.h = h; self.w = w; self.rank = 2
    }

    /// A 3D extent `[D, H, W]` (`rank = 3`).
    public init(d: Int, h: Int, w: Int) {
        precondition(d > 0 && h > 0 && w > 0, "SpatialExtent: sizes must be positive, got [\(d), \(h), \(w)]")
        self.d = d; self.h = h; self.w = w; self.rank = 3
    }

    /// From spatial dimensions `[H, W]` or `[D, H, W]` (the trailing dims of a tensor shape).
    public init(_ dims: [Int]) {
        switch dims.count {
        case 2: self.init(h: dims[0], w: dims[1])
        case 3: self.init(d: dims[0], h: dims[1], w: dims[2])
        default: preconditionFailure("SpatialExtent: expected 2 or 3 spatial dims, got \(dims)")
        }
    }

    /// Voxels in one plane/volume: `d · h · w`.
    @inlinable public var count: Int { d * h * w }

    /// `[H, W]` for rank 2, `[D, H, W]` for rank 3.
    public var dims: [Int] { rank == 2 ? [h, w] : [d, h, w] }

    public var description: String { dims.map(String.init).joined(separator: "×") }
}
