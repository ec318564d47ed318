/// Upper bounds on every size and count a config sets, in one place.
///
/// A config is read before anything is allocated; a mistyped `batch_size: 400000` or
/// `phantom.size: [1e6, 1e6]` is an error naming the key and the bound here, not an abort in the
/// allocator an hour into a run. Each bound is far above what the 24 GB machines MorphoSeg trains
/// on can use.
public enum ConfigBounds {
    /// Voxels along one axis of a phantom, patch or inference window.
    public static let axis = 1024
    /// Voxels of one phantom, patch or window (256³).
    public static let voxels = 1 << 24
    /// Voxels of all phantoms together (images and labels are held in memory as float32).
    public static let phantomVoxels = 1 << 28
    /// Phantom images generated.
    public static let phantomCount = 100_000
    /// Phantom classes including background: phantom labels are written as uint8.
    public static let phantomClasses = 255
    /// Output classes including background (label maps are written as int16 above 255).
    public static let classes = 1024
    /// Channels of one U-Net level.
    public static let channels = 4096
    /// U-Net levels (entries of `model.unet.channels`).
    public static let levels = 10
    /// Samples of one training batch, windows of one inference batch.
    public static let batchSize = 1024
    /// Voxels of one training batch (batch size × patch voxels): 2³⁰, 4 GiB of float32 per channel.
    public static let batchVoxels = 1 << 30
    /// Epochs, and steps in one epoch.
    public static let epochs = 1_000_000
    public static let stepsPerEpoch = 1_000_000
    /// Background data threads and batches prefetched.
    public static let threads = 256
    public static let prefetch = 1024

    /// `sizes` are within `axis` each and `voxels` in product; nil when they are, else the
    /// message for the config error.
    static func sizeProblem(_ sizes: [Int]) -> String? {
        if let big = sizes.first(where: { $0 > axis }) { return "\(big) voxels along one axis, at most \(axis)" }
        let product = sizes.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        if product > voxels { return "\(sizes) is \(product) voxels, at most \(voxels) (256³)" }
        return nil
    }
}
