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
            folder as --input, its cases are segmented into the --output folder: an nnU-Net imagesTs \
            folder (every file <case>_<XXXX>.nii.gz, one per channel) gives <case>.nii.gz, the name of \
            the case's reference in labelsTs; in any other folder each file is one case (for a model with \
            several modalities, a 4D file holding them all, as in a Decathlon imagesTs) and keeps its name. A file that fails is reported and the others are still \
            segmented, then the failures are listed and the exit status is 1. Several --model checkpoints (e.g. the folds of one \
            dataset) are an ensemble: their probabilities are averaged. A run folder as --model stands for \
            the best.safetensors of each of its fold_k folders (the fold ensemble), or for its own \
            best.safetensors when it was trained without folds. --tta averages over the inputs \
            mirrored along every axis (8 passes in 3D, 4 in 2D). The largest-component postprocessing \
            decided after training (stored in the checkpoint) is applied unless --no-postprocessing; \
            --keep-largest chooses it by hand. Images with NaN or \
            infinite voxels are refused unless --nan-as gives the value to use for them.
            """)

    @Option(name: .long, help: "Checkpoint (best.safetensors or last.safetensors of a run), or a run folder (all its folds); repeat for an ensemble.")
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

    @Option(name: .customLong("nan-as"), help: "Replace NaN and infinite input voxels by this value (default: refuse such images).")
    var nanAs: Float?

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if noPostprocessing && keepLargest != nil {
            throw ValidationError("--no-postprocessing and --keep-largest exclude each other")
        }
        if let nanAs, !nanAs.isFinite { throw ValidationError("--nan-as must be a finite number") }
    }

    func run() throws {
        ComputeSettings.apply(threads: compute.threads)
        let checkpoints = try EnsembleCheckpoints.expand(model)
        if checkpoints != model { print("ensemble of \(checkpoints.count) checkpoint\(checkpoints.count == 1 ? "" : "s"): \(checkpoints.joined(separator: ", "))") }
        // In folder mode the folders are compared: the same folder would overwrite every input.
        try OutputPaths.checkDistinct(
            inputs: checkpoints + input, outputs: [("--output", output)] + (probabilities.map { [("--probabilities", $0)] } ?? []))
        var segmenter = try SegmentationEnsemble(checkpoints: checkpoints, mirroring: tta)
        if noPostprocessing { segmenter.postprocessing = PostprocessingPlan() }
        switch keepLargest {
        case .foreground: segmenter.postprocessing = PostprocessingPlan(foreground: true)
        case .perClass: segmenter.postprocessing = PostprocessingPlan(classes: Array(1..<segmenter.config.model.unet.classes))
        case nil: break
        }
        if input.count == 1, FileChecks.isFolder(input[0]) {
            try segmentFolder(segmenter, input[0])
        } else {
            try segmenter.segmentFiles(inputs: input, output: output, probabilities: probabilities, nanAs: nanAs)
            print("wrote \(output)" + (probabilities.map { " and \($0)" } ?? ""))
        }
    }

    /// Every case of the folder (`InputFolder`: nnU-Net `<case>_<XXXX>` channel files or plain
    /// single-channel files) that can be segmented is; each failure is one line on stderr as it
    /// happens and again in the closing list, and makes the exit status 1.
    func segmentFolder(_ segmenter: SegmentationEnsemble, _ folder: String) throws {
        let cases = try InputFolder.cases(in: folder, channels: segmenter.config.data.modalities.count)
        for target in [output] + (probabilities.map { [$0] } ?? []) { try OutputPaths.createFolder(target) }
        var failures: [String] = []
        for c in cases {
            let name = c.outputName, file = c.inputs[0]
            do {
                try segmenter.segmentFiles(
                    inputs: c.inputs, output: "\(output)/\(name)", probabilities: probabilities.map { "\($0)/\(name)" }, nanAs: nanAs)
                print("\(c.inputs.joined(separator: " + ")) -> \(output)/\(name)")
            } catch {
                let line = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
                failures.append(line.hasPrefix(file) ? line : "\(file): \(line)")
                FileHandle.standardError.write(Data("error: \(failures.last!)\n".utf8))
            }
        }
        print("segmented \(cases.count - failures.count) of \(cases.count) cases into \(output)")
        guard failures.isEmpty else {
            FileHandle.standardError.write(Data(
                ("\(failures.count) of \(cases.count) cases failed and have no output:\n" + failures.map { "  \($0)\n" }.joined()).utf8))
            throw ExitCode(1)
        }
    }
}
