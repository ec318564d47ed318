import ArgumentParser
import Foundation
import MorphoIO
import MorphoTrain

/// `morphoseg apply`: resample an image through ITK/ANTs transforms (and MorphoSeg fields) onto
/// a reference grid, as `antsApplyTransforms` does.
struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply affine and displacement-field transforms to an image (antsApplyTransforms' way).",
        discussion: """
            Transforms are listed as antsApplyTransforms takes them (and as ANTs prints a \
            registration's result, `-t 1Warp.nii.gz -t 0GenericAffine.mat`): the image is moved by \
            the last listed first. Each is an ITK affine (.mat as ANTs writes it, or ITK text \
            .txt/.tfm), an ITK/ANTs displacement field (.nii/.nii.gz, LPS millimetres) or a MorphoSeg \
            voxel field (recognised by its intent name). `[file,1]` or `--invert N` uses the inverse \
            of an affine. The output is on the reference grid with the reference's geometry; \
            multi-channel images are resampled channel by channel; with nearest or label \
            interpolation integer label maps keep their integer type. An image with NaN or infinite \
            voxels, or a field with such components, is refused unless --nan-as gives them a value; \
            with nearest or label interpolation the input is a label map, whose non-finite voxels \
            are always refused.
            """)

    @Option(help: "Reference image: the output grid and geometry.")
    var reference: String

    @Option(help: "Image to resample.")
    var input: String

    @Option(help: "Output image (.nii or .nii.gz).")
    var output: String

    @Option(name: [.customShort("t"), .customLong("transform")], help: "A transform (repeatable, antsApplyTransforms order).")
    var transforms: [String] = []

    @Option(help: "Invert the N-th listed transform (1-based, repeatable; affines only).")
    var invert: [Int] = []

    @Option(help: "linear, nearest or label (ANTs' GenericLabel).")
    var interpolation: Interpolation = .linear

    @Option(name: .customLong("default-value"), help: "Value of output voxels that map outside the input.")
    var defaultValue: Float = 0

    @Option(name: .customLong("output-field"), help: "Also write the whole chain as one displacement field on the reference grid (ITK convention).")
    var outputField: String?

    @Option(name: .customLong("output-jacobian"), help: "Also write the Jacobian determinant of the chain on the reference grid (float NIfTI).")
    var outputJacobian: String?

    @Option(name: .customLong("nan-as"), help: "Replace NaN and infinite voxels of the image (linear interpolation) and of displacement fields by this value (default: refuse them; never applied to label maps).")
    var nanAs: Float?

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if let bad = invert.first(where: { $0 < 1 || $0 > transforms.count }) {
            throw ValidationError("--invert \(bad): there are \(transforms.count) transforms")
        }
        if let nanAs, !nanAs.isFinite { throw ValidationError("--nan-as must be a finite number") }
    }

    func run() throws {
        ComputeSettings.apply(threads: compute.threads)
        try OutputPaths.checkDistinct(
            inputs: [reference, input] + transforms.map { try PointTransform.argumentParts($0).path },
            outputs: [("--output", output)] + (outputField.map { [("--output-field", $0)] } ?? [])
                + (outputJacobian.map { [("--output-jacobian", $0)] } ?? []))
        let start = Date()
        let referenceVolume = try NIfTI.read(reference)
        // Nearest and label interpolation are for label maps: their NaN voxels have no class to become.
        let inputVolume = interpolation == .linear ? try Volume.readImage(input, nanAs: nanAs) : try Volume.readLabelMap(input)
        let chain = try TransformChain.load(transforms, inverted: Set(invert.map { $0 - 1 }), nanAs: nanAs)
        let result = TransformApplication.apply(
            chain, to: inputVolume, reference: referenceVolume, interpolation: interpolation, defaultValue: defaultValue)
        try NIfTI.write(result, to: output, datatype: result.header.datatype, like: referenceVolume)
        if outputField != nil || outputJacobian != nil {
            let field = chain.displacementField(on: referenceVolume)
            if let outputField { try field.write(to: outputField, like: referenceVolume) }
            if let outputJacobian {
                try NIfTI.write(FieldJacobian.determinant(of: field), to: outputJacobian, like: referenceVolume)
            }
        }
        print("\(output): \(result.width)×\(result.height)×\(result.depth), \(chain.transforms.count) transform(s), "
            + "\(interpolation.rawValue) interpolation, " + String(format: "%.2f s", Date().timeIntervalSince(start)))
    }
}

extension Interpolation: ExpressibleByArgument {}
