import ArgumentParser
import Foundation
import MorphoIO
import MorphoTrain

/// `morphoseg segment --model CKPT [--model CKPT …] --input IN --output OUT [--probabilities P] [--tta]`.
struct Segment: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Segment NIfTI images with a trained model.",
        discussion: """
            Applies the preprocessing the model was trained with, sliding-window inference with \
            overlap blending (the config's inference section), maps the result back to the input \
            grid and writes it with the input's geometry: labels as uint8 (int16 above 256 classes), \
            probabilities as float32 with one volume per class. A model with several modalities takes \
            one --input per modality, in the config's order (or one 4D file holding them all). With a \
            folder as --input (single-modality models), every .nii/.nii.gz in it is segmented into the \
            --output folder under the same name. Several --model checkpoints (e.g. the folds of one \
            dataset) are an ensemble: their probabilities are averaged. --tta averages over the inputs \
            mirrored along every axis (8 passes in 3D, 4 in 2D). The largest-component postprocessing \
            decided after training (stored in the checkpoint) is applied unless --no-postprocessing; \
            --keep-largest chooses it by hand.
            """)

    @Option(name: .long, help: "Checkpoint (best.safetensors or last.safetensors of a run); repeat for an ensemble.")
    var model: [String]

    @Option(name: .long, help: "Input NIfTI file (repeat per modality), or a folder of them.")
    var input: [String]

    @Option(name: .long, help: "Output label file (.nii or .nii.gz), or a folder when --input is a folder.")
    var output: String

    @Option(name: .long, help: "Also write class probabilities here (file, or folder in folder mode).")
    var probabilities: String?

    @Flag(help: "Test-time mirroring: average the probabilities over inputs mirrored along every axis.")
    var tta = false

    @Flag(help: "Do not apply the checkpoint's stored largest-component postprocessing.")
    var noPostprocessing = false

    @Option(help: "Keep only the largest connected component: of the foreground, or of each class (overrides the stored plan).")
    var keepLargest: KeepLargest?

    enum KeepLargest: String, ExpressibleByArgument, CaseIterable {
        case foreground, perClass = "per-class"
    }

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if noPostprocessing && keepLargest != nil {
            throw ValidationError("--no-postprocessing and --keep-largest exclude each other")
        }
    }

    func run() throws {
        ComputeSettings.apply(threads: compute.threads)
        // In folder mode the folders are compared: the same folder would overwrite every input.
        try OutputPaths.checkDistinct(
            inputs: model + input, outputs: [("--output", output)] + (probabilities.map { [("--probabilities", $0)] } ?? []))
        var segmenter = try SegmentationEnsemble(checkpoints: model, mirroring: tta)
        if noPostprocessing { segmenter.postprocessing = PostprocessingPlan() }
        switch keepLargest {
        case .foreground: segmenter.postprocessing = PostprocessingPlan(foreground: true)
        case .perClass: segmenter.postprocessing = PostprocessingPlan(classes: Array(1..<segmenter.config.model.unet.classes))
        case nil: break
        }
        var isDirectory: ObjCBool = false
        if input.count == 1, FileManager.default.fileExists(atPath: input[0], isDirectory: &isDirectory), isDirectory.boolValue {
            guard segmenter.config.data.modalities.count == 1 else {
                throw ValidationError("folder input needs a single-modality model; this one takes \(segmenter.config.data.modalities.joined(separator: ", "))")
            }
            let files = try Segmenter.niftiFiles(in: input[0])
            for folder in [output] + (probabilities.map { [$0] } ?? []) {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            }
            for file in files {
                let name = (file as NSString).lastPathComponent
                try segmenter.segmentFiles(
                    inputs: [file], output: "\(output)/\(name)", probabilities: probabilities.map { "\($0)/\(name)" })
                print("\(file) -> \(output)/\(name)")
            }
        } else {
            try segmenter.segmentFiles(inputs: input, output: output, probabilities: probabilities)
            print("wrote \(output)" + (probabilities.map { " and \($0)" } ?? ""))
        }
    }
}
