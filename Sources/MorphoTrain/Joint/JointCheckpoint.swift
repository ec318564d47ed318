import Foundation
import MorphoDistributed
import MorphoIO
import MorphoNN
import MorphoTensor

extension Checkpoint {
    /// The metadata key under which registration and joint checkpoints carry their resolved
    /// `registration:` section (the shared part of the config is `config`), so that
    /// `morphoseg register --model` needs nothing else.
    public static let registrationSectionKey = "registration"
    /// The metadata key under which joint checkpoints carry their `joint:` section.
    public static let jointSectionKey = "joint"

    /// The checkpoint restricted to the tensors under `prefix` (prefix removed), marked as `task`.
    func part(_ prefix: String, as task: TaskKind) -> Checkpoint {
        var c = self
        c.model = Dictionary(uniqueKeysWithValues: model.compactMap { name, t in
            name.hasPrefix(prefix) ? (String(name.dropFirst(prefix.count)), t) : nil
        })
        c.optimizer = [:]
        c.task = task
        return c
    }

    /// A joint checkpoint's U-Net as a segmentation checkpoint (`seg.` tensors); any other
    /// checkpoint unchanged. What `Segmenter` loads.
    public func segmentationPart() -> Checkpoint {
        task == .joint ? part(JointModel.segmentationPrefix, as: .segmentation) : self
    }

    /// A joint checkpoint's displacement network as a registration checkpoint (`reg.` tensors);
    /// any other checkpoint unchanged.
    public func registrationPart() -> Checkpoint {
        task == .joint ? part(JointModel.registrationPrefix, as: .registration) : self
    }
}
