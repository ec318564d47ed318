import MorphoNN

/// The two networks of a joint run under one module: `seg` (the U-Net, parameters `seg.…`) and
/// `reg` (the `DisplacementNet`, parameters `reg.…`). Checkpoints therefore name every tensor
/// `model.seg.…` / `model.reg.…`; `Checkpoint.segmentationPart` / `registrationPart` strip the
/// prefixes for `morphoseg segment` and `morphoseg register --model`.
public final class JointModel: Module {
    public let segmentation: UNet
    public let registration: DisplacementNet
    public static let segmentationPrefix = "seg."
    public static let registrationPrefix = "reg."

    public init(segmentation: UNet, registration: DisplacementNet) {
        self.segmentation = segmentation
        self.registration = registration
    }

    public var children: [(String, any Module)] { [("seg", segmentation), ("reg", registration)] }
}

/// Which network a step trains.
public enum JointPhase: String, Sendable {
    /// Both (fully joint strategy).
    case both
    /// The displacement network; the U-Net's output is a constant of the step.
    case registration
    /// The U-Net; the field is a constant of the step.
    case segmentation
}
