import MorphoIO
import MorphoTrain

/// The safetensors decoder on arbitrary bytes (`SafeTensors.decode`, every tensor converted
/// to floats and integers), then — when they decode — the same bytes as a file through
/// `Checkpoint.read` (metadata fields, the embedded YAML config, tensor names and dtypes) and
/// `TaskConfig(checkpoint:)` (the task sections a registration or joint checkpoint embeds).
enum SafeTensorsFuzzing {
    static func run(_ bytes: UnsafeRawBufferPointer) -> [FuzzOutcome] {
        let decoded = FuzzOutcome.of {
            let file = try SafeTensors.decode(Array(bytes), path: "input.safetensors")
            var elements = 0
            for tensor in file.tensors.values {
                elements += tensor.floats().count
                _ = tensor.int64s()
                _ = tensor.uint8s()
            }
            return "\(file.tensors.count) tensors, \(elements) elements, \(file.metadata.count) metadata"
        }
        guard case .accepted = decoded else { return [decoded] }
        let path = ScratchFolder.write(bytes, as: "checkpoint.safetensors")
        let checkpoint = FuzzOutcome.of {
            let checkpoint = try Checkpoint.read(path)
            return "\(try TaskConfig(checkpoint: checkpoint, path: path).kind) epoch \(checkpoint.epoch)"
        }
        return [decoded, checkpoint]
    }
}
