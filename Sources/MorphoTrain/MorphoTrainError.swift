import MorphoIO

/// Everything MorphoTrain can refuse, one case per distinct problem. Each case carries the config
/// key path or the file it is about, so `description` is one line a user can act on, e.g.
/// `Configs/x.yaml: training.optimizer.lr: expected a number, got "fast"`.
///
/// Errors from reading or writing NIfTI and safetensors files are `MorphoIOError` values and pass
/// through unchanged (they already name the file).
public enum MorphoTrainError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A config value is missing, of the wrong type, out of range or not allowed; `key` is the
    /// dotted path (`training.optimizer.lr`), `file` the YAML file (or `<config>` for a string).
    case config(file: String, key: String, message: String)
    /// The YAML itself does not parse.
    case configSyntax(file: String, message: String)
    /// A file the run needs does not exist; `role` says what it was for ("manifest", "label", …).
    case fileNotFound(path: String, role: String)
    /// A glob or manifest that matched no usable files, or a manifest row that is malformed.
    case dataset(source: String, message: String)
    /// Image and label (or two modalities) of one subject are not on the same voxel grid.
    case gridMismatch(first: String, second: String, detail: String)
    /// A volume holds NaN or infinite voxels.
    case nonFiniteVoxels(path: String, count: Int)
    /// A label map (or tissue probability map) holds NaN or infinite voxels; never replaced.
    case nonFiniteLabels(path: String, count: Int)
    /// A label map holds a value that is not a class index `0..<classes`.
    case badLabel(path: String, value: Float, classes: Int)
    /// The loss became NaN or infinite; training stopped, the last good checkpoint is kept.
    case nonFiniteLoss(epoch: Int, step: Int, terms: String)
    /// A checkpoint that cannot be used (missing tensor, wrong shape, bad metadata).
    case checkpoint(path: String, message: String)
    /// Inputs of an evaluation or inference that do not fit together.
    case mismatch(path: String, message: String)
    /// An output location that cannot be written.
    case output(path: String, message: String)

    // Registration inputs and options.

    /// No voxel of the moving image lands on the fixed image's grid once both are placed in
    /// world coordinates through their affines.
    case noOverlap(fixed: String, moving: String)
    /// A label map whose grid (size or affine) differs from its image's.
    /// `labelShape` and `imageShape` are `[D, H, W]` (`Volume.spatialShape`); the message prints
    /// them in (x, y, z), the order of NIfTI headers and the docs.
    case labelGridMismatch(labels: String, image: String, labelShape: [Int], imageShape: [Int])
    /// Registration works on single-channel images.
    case notSingleChannel(path: String, channels: Int)
    /// One image is 2D and the other 3D.
    case dimensionalityMismatch(fixed: String, moving: String)
    /// A displacement-field file whose channel count is not its number of spatial axes.
    case notADisplacementField(path: String, channels: Int, axes: Int)
    /// The model's input or output does not fit the pair (channels, dimensionality).
    case modelMismatch(path: String, reason: String)
    /// A bad option or config value; `key` is its name.
    case invalidOption(key: String, reason: String)

    /// A `-t` argument of `apply`/`transform` that is neither `file` nor `[file,0]` / `[file,1]`.
    case badTransformSpecification(String)
    /// A displacement field listed as inverted (`[field,1]`): that needs `transform invert` first.
    case fieldInversion(path: String)

    public var description: String {
        switch self {
        case .badTransformSpecification(let s):
            return "transform '\(s)': expected FILE or [FILE,0|1] (1 = use the inverse of an affine)"
        case .fieldInversion(let p):
            return "\(p): a displacement field cannot be inverted on the fly; make its inverse with `morphoseg transform invert` and list that"
        case .config(let file, let key, let message):
            return key.isEmpty ? "\(file): \(message)" : "\(file): \(key): \(message)"
        case .configSyntax(let file, let message):
            return "\(file): invalid YAML: \(message)"
        case .fileNotFound(let path, let role):
            return "\(path): no such \(role) file"
        case .dataset(let source, let message):
            return "\(source): \(message)"
        case .gridMismatch(let first, let second, let detail):
            return "\(first) and \(second) are not on the same voxel grid: \(detail)"
        case .nonFiniteVoxels(let path, let count):
            return "\(path): \(count) voxel\(count == 1 ? " is" : "s are") NaN or infinite (to replace them: --nan-as V, or data.nan_as in a training config)"
        case .nonFiniteLabels(let path, let count):
            return "\(path): \(count) voxel\(count == 1 ? " is" : "s are") NaN or infinite; a label or tissue map is refused, not replaced (--nan-as applies to images and fields only)"
        case .badLabel(let path, let value, let classes):
            return "\(path): label value \(value) is not a class index in 0..<\(classes)"
        case .nonFiniteLoss(let epoch, let step, let terms):
            return "training stopped: the loss is not finite at epoch \(epoch), step \(step) (\(terms)); "
                + "the last good checkpoint is kept (try a lower training.optimizer.lr or training.grad_clip)"
        case .checkpoint(let path, let message):
            return "\(path): \(message)"
        case .mismatch(let path, let message):
            return "\(path): \(message)"
        case .output(let path, let message):
            return "\(path): \(message)"
        case .noOverlap(let fixed, let moving):
            return "\(moving): does not overlap \(fixed) in world coordinates (check the affines / orientation)"
        case .labelGridMismatch(let labels, let image, let ls, let ish):
            return "\(labels): label map grid (x, y, z) \(AxisOrder.xyz(fromDHW: ls)) differs from its image \(image) \(AxisOrder.xyz(fromDHW: ish)) (size or affine)"
        case .notSingleChannel(let path, let channels):
            return "\(path): registration needs a single-channel image, this one has \(channels) channels"
        case .dimensionalityMismatch(let fixed, let moving):
            return "\(moving): one of \(fixed) and this image is 2D, the other 3D"
        case .notADisplacementField(let path, let channels, let axes):
            return "\(path): not a displacement field (\(channels) components for \(axes) spatial axes)"
        case .modelMismatch(let path, let reason):
            return "\(path): \(reason)"
        case .invalidOption(let key, let reason):
            return "\(key): \(reason)"
        }
    }
}
