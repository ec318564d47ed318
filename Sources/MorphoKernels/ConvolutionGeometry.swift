/// The shape of one convolution layer: batch, channels, input size, kernel, stride and
/// zero padding. 2D layers are the D = 1 case (`inD: 1`, kernel depth 1, stride and padding
/// depth 1 and 0).
///
/// Output size per axis follows PyTorch: `out = (in + 2·padding − kernel) / stride + 1`
/// (floor division); input voxels past the last full window are ignored.
/// Tensors are contiguous `[N, C, D, H, W]` float32; weights `[Cout, Cin, kD, kH, kW]`.
public struct ConvGeometry: Sendable, Equatable, CustomStringConvertible {
    public var n: Int
    public var cin: Int
    public var cout: Int
    public var inD: Int
    public var inH: Int
    public var inW: Int
    /// Kernel size (depth, height, width) in voxels.
    public var kernel: (d: Int, h: Int, w: Int)
    /// Step between output voxels, in input voxels.
    public var stride: (d: Int, h: Int, w: Int)
    /// Zero voxels added on both sides of each axis.
    public var padding: (d: Int, h: Int, w: Int)

    public init(
        n: Int, cin: Int, cout: Int, inD: Int, inH: Int, inW: Int,
        kernel: (Int, Int, Int), stride: (Int, Int, Int), padding: (Int, Int, Int)
    ) {
        precondition(n >= 1 && cin >= 1 && cout >= 1, "ConvGeometry: batch and channel counts must be >= 1")
        precondition(inD >= 1 && inH >= 1 && inW >= 1, "ConvGeometry: input size must be >= 1 on every axis")
        precondition(kernel.0 >= 1 && kernel.1 >= 1 && kernel.2 >= 1, "ConvGeometry: kernel must be >= 1")
        precondition(stride.0 >= 1 && stride.1 >= 1 && stride.2 >= 1, "ConvGeometry: stride must be >= 1")
        precondition(padding.0 >= 0 && padding.1 >= 0 && padding.2 >= 0, "ConvGeometry: padding must be >= 0")
        self.n = n
        self.cin = cin
        self.cout = cout
        self.inD = inD
        self.inH = inH
        self.inW = inW
        self.kernel = (kernel.0, kernel.1, kernel.2)
        self.stride = (stride.0, stride.1, stride.2)
        self.padding = (padding.0, padding.1, padding.2)
        precondition(outD >= 1 && outH >= 1 && outW >= 1, "ConvGeometry: kernel larger than padded input (\(self))")
    }

    /// A cubic 3D layer: kernel `k`, same stride and padding on every axis.
    public static func cubic(n: Int = 1, cin: Int, cout: Int, size: (d: Int, h: Int, w: Int),
                             kernel k: Int, stride s: Int = 1, padding p: Int = 0) -> ConvGeometry {
        ConvGeometry(n: n, cin: cin, cout: cout, inD: size.d, inH: size.h, inW: size.w,
                     kernel: (k, k, k), stride: (s, s, s), padding: (p, p, p))
    }

    /// A square 2D layer on `[N, C, H, W]` (D = 1): kernel `k`, same stride and padding on H and W.
    public static func planar(n: Int = 1, cin: Int, cout: Int, size: (h: Int, w: Int),
                              kernel k: Int, stride s: Int = 1, padding p: Int = 0) -> ConvGeometry {
        ConvGeometry(n: n, cin: cin, cout: cout, inD: 1, inH: size.h, inW: size.w,
                     kernel: (1, k, k), stride: (1, s, s), padding: (0, p, p))
    }

    public var outD: Int { (inD + 2 * padding.d - kernel.d) / stride.d + 1 }
    public var outH: Int { (inH + 2 * padding.h - kernel.h) / stride.h + 1 }
    public var outW: Int { (inW + 2 * padding.w - kernel.w) / stride.w + 1 }

    /// Voxels per input channel plane `D·H·W`.
    public var inVoxels: Int { inD * inH * inW }
    /// The input grid as an extent of `rank` (2: `[H, W]`, 3: `[D, H, W]`).
    public func inputExtent(rank: Int) -> SpatialExtent {
        rank == 2 ? SpatialExtent(h: inH, w: inW) : SpatialExtent(d: inD, h: inH, w: inW)
    }
    /// Voxels per output channel plane.
    public var outVoxels: Int { outD * outH * outW }
    /// Taps per (output, input) channel pair `kD·kH·kW`.
    public var kernelVolume: Int { kernel.d * kernel.h * kernel.w }

    /// Element counts of the four tensors.
    public var inputCount: Int { n * cin * inVoxels }
    public var outputCount: Int { n * cout * outVoxels }
    public var weightCount: Int { cout * cin * kernelVolume }

    /// Floating-point operations of one forward pass, `2·N·Cout·Cin·kD·kH·kW·outVoxels`
    /// (one multiply and one add per tap). `backwardData` and `backwardWeight` each cost the same.
    public var flops: Double {
        2 * Double(n) * Double(cout) * Double(cin) * Double(kernelVolume) * Double(outVoxels)
    }

    public var description: String {
        "conv N\(n) \(cin)->\(cout) in \(inD)x\(inH)x\(inW) k\(kernel.d)x\(kernel.h)x\(kernel.w) "
            + "s\(stride.d)x\(stride.h)x\(stride.w) p\(padding.d)x\(padding.h)x\(padding.w) "
            + "-> out \(outD)x\(outH)x\(outW)"
    }

    public static func == (a: ConvGeometry, b: ConvGeometry) -> Bool {
        a.n == b.n && a.cin == b.cin && a.cout == b.cout && a.inD == b.inD && a.inH == b.inH && a.inW == b.inW
            && a.kernel == b.kernel && a.stride == b.stride && a.padding == b.padding
    }
}
