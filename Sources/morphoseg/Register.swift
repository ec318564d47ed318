import ArgumentParser
import Foundation
import MorphoDistributed
import MorphoIO
import MorphoTrain

/// `morphoseg register`: deformable registration of one moving image onto one fixed image, with
/// a trained network (`--model`) or by optimising the field for this pair (`--optimize`);
/// `morphoseg register deform` makes test pairs with a known random smooth deformation.
struct Register: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register",
        abstract: "Deformable registration of NIfTI images.",
        subcommands: [Register.Pair.self, Register.Deform.self, Train.self],
        defaultSubcommand: Register.Pair.self)
}

extension Register {
    /// `morphoseg register [pair]`: one moving image onto one fixed image.
    struct Pair: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pair",
            abstract: "Deformably register a moving image onto a fixed image (the default subcommand).",
            discussion: """
                The moving image (and its labels) is first resampled onto the fixed grid through both \
                affines (world coordinates), then deformed by a dense displacement field u: the warped \
                image at fixed voxel p is the moving image at p + u(p). Outputs are on the fixed grid \
                with its geometry. The field is written as a 5D NIfTI vector image [x, y, z, 1, 3] \
                (intent 1007) in ITK's convention, which ANTs (antsApplyTransforms -t FIELD), ITK, \
                `morphoseg apply` and `morphoseg transform` read: LPS millimetres, the displacement \
                taking each fixed point to its moving point. --field-units voxels writes MorphoSeg's \
                voxel form instead (component i along NIfTI voxel axis i, in voxels; intent name \
                "MorphoSeg voxel").

                --model uses a checkpoint trained on a registration or joint config (`morphoseg train`). \
                --optimize needs no model: the field itself is optimised for this pair, coarse to fine \
                (LCC similarity + λ·grad-l2 smoothness, Adam), the way classical tools work.

                The summary reports Dice per label before and after (when --fixed-labels and \
                --moving-labels are given), similarity before and after, the folding fraction \
                (det J ≤ 0) and the std of log|J|.
                """)

        @Option(help: "Registration checkpoint (.safetensors) from `morphoseg train` on a registration or joint config.")
        var model: String?

        @Flag(help: "Optimise the field for this pair instead of using a model.")
        var optimize = false

        @Option(help: "Fixed (target) image, NIfTI.")
        var fixed: String

        @Option(help: "Moving (source) image, NIfTI.")
        var moving: String

        @Option(name: .customLong("output-warped"), help: "Where to write the warped moving image (fixed grid).")
        var outputWarped: String

        @Option(name: .customLong("output-field"), help: "Where to write the displacement field (5D vector NIfTI).")
        var outputField: String?

        @Option(name: .customLong("output-jacobian"), help: "Where to write the field's Jacobian determinant (float NIfTI, fixed grid).")
        var outputJacobian: String?

        @Option(name: .customLong("moving-labels"), help: "Label map of the moving image (on its grid).")
        var movingLabels: String?

        @Option(name: .customLong("output-labels"), help: "Where to write the warped moving labels (needs --moving-labels).")
        var outputLabels: String?

        @Option(name: .customLong("fixed-labels"), help: "Label map of the fixed image, for Dice before/after.")
        var fixedLabels: String?

        @Option(name: .customLong("field-units"), help: "mm: ITK/ANTs convention (LPS mm); voxels: MorphoSeg's voxel form.")
        var fieldUnits: FieldUnits = .mm

        @Flag(help: "Print the summary as JSON on standard output.")
        var json = false

        @Option(help: "Optimisation levels, coarse to fine (each halves the resolution of the next).")
        var levels: Int = InstanceOptimization.Settings().levels

        @Option(help: "Iterations per level, coarse to fine, comma-separated (one value: the same at every level).")
        var iterations: String = InstanceOptimization.Settings().iterations.map(String.init).joined(separator: ",")

        @Option(name: .customLong("smoothness"), help: "Weight λ of the grad-l2 smoothness term (--optimize).")
        var smoothness: Double = Double(InstanceOptimization.Settings().smoothness)

        @Option(name: .customLong("learning-rate"), help: "Adam step size on the field, voxels (--optimize).")
        var learningRate: Double = Double(InstanceOptimization.Settings().learningRate)

        @Option(name: .customLong("lcc-window"), help: "LCC window (odd, voxels).")
        var lccWindow: Int = InstanceOptimization.Settings().lccWindow

        @Option(name: .customLong("nan-as"), help: "Replace NaN and infinite voxels of the fixed and moving images by this value (default: refuse such images).")
        var nanAs: Float?

        @OptionGroup var compute: ComputeOptions

        func validate() throws {
            if (model == nil) == !optimize {
                throw ValidationError("give exactly one of --model CKPT and --optimize")
            }
            if outputLabels != nil && movingLabels == nil {
                throw ValidationError("--output-labels needs --moving-labels")
            }
            if let nanAs, !nanAs.isFinite { throw ValidationError("--nan-as must be a finite number") }
            _ = try settings()
        }

        func settings() throws -> InstanceOptimization.Settings {
            let perLevel = iterations.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !perLevel.isEmpty, perLevel.allSatisfy({ ($0 ?? -1) >= 0 }) else {
                throw ValidationError("--iterations: expected non-negative integers separated by commas, got '\(iterations)'")
            }
            let counts = perLevel.map { $0! }
            guard counts.count == 1 || counts.count == levels else {
                throw ValidationError("--iterations: \(counts.count) values for \(levels) levels")
            }
            var s = InstanceOptimization.Settings()
            s.levels = levels
            s.iterations = counts.count == 1 ? Array(repeating: counts[0], count: levels) : counts
            s.smoothness = Float(smoothness)
            s.learningRate = Float(learningRate)
            s.lccWindow = lccWindow
            try s.validate()
            return s
        }

        func run() throws {
            ComputeSettings.apply(threads: compute.threads)
            let files = RegistrationPairFiles(fixed: fixed, moving: moving, fixedLabels: fixedLabels, movingLabels: movingLabels)
            let outputs = [("--output-warped", outputWarped)] + [
                ("--output-labels", outputLabels), ("--output-field", outputField), ("--output-jacobian", outputJacobian),
            ].compactMap { option, path in path.map { (option, $0) } }
            try OutputPaths.checkDistinct(
                inputs: [fixed, moving] + [fixedLabels, movingLabels, model].compactMap { $0 }, outputs: outputs)
            let start = Date()
            let cpuStart = RegistrationSummary.processCPUSeconds()
            // MorphoTrainError and MorphoIOError describe themselves in one line naming the file;
            // ArgumentParser prints that line and exits with status 1.
            let pair = try RegistrationPair(
                fixed: NIfTI.read(fixed).replacingNonFiniteVoxels(with: nanAs),
                moving: NIfTI.read(moving).replacingNonFiniteVoxels(with: nanAs),
                fixedLabels: fixedLabels.map { try NIfTI.read($0) }, movingLabels: movingLabels.map { try NIfTI.read($0) },
                files: files)
            let method: RegistrationMethod = try model.map { .model(try RegistrationModel.load($0)) } ?? .optimize(try settings())
            let result = try Registration.register(pair, method: method, lccWindow: lccWindow)
            // All outputs or none: a failure on a later one removes those this run already wrote.
            let written = OutputSet(outputs.map(\.1))
            do {
                try result.write(warped: outputWarped, field: outputField, labels: outputLabels, fieldUnits: fieldUnits, pair: pair)
                if let outputJacobian {
                    let field = ITKDisplacementField(voxels: DisplacementFieldVolume.volume(fromFlow: result.flow, on: pair.fixed))
                    try NIfTI.write(try FieldJacobian.determinant(of: field), to: outputJacobian, like: pair.fixed)
                }
            } catch {
                written.removeWritten()
                throw error
            }
            let summary = RegistrationSummary(
                files: files,
                outputs: RegistrationOutput.list(
                    warped: outputWarped, labels: outputLabels, field: outputField, fieldUnits: fieldUnits, jacobian: outputJacobian),
                quality: result.quality, seconds: Date().timeIntervalSince(start),
                cpuSeconds: RegistrationSummary.processCPUSeconds() - cpuStart, threads: ComputeSettings.threads)
            if json {
                print(try summary.json())
            } else {
                print(result.quality.summary)
                for output in summary.outputs { print("\(output.kind): \(output.path) (\(output.convention))") }
                print(String(format: "time: %.2f s wall, %.2f s CPU (%d threads)", summary.seconds, summary.cpuSeconds, summary.threads))
            }
        }
    }
}

extension FieldUnits: ExpressibleByArgument {}

extension Register {
    /// `morphoseg register deform`: a registration test pair with a known deformation.
    struct Deform: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "deform",
            abstract: "Deform an image (and its labels) by a random smooth diffeomorphic field.",
            discussion: """
                Makes a test pair for `morphoseg register`: the fixed image is the input (resampled to \
                --spacing if given), the moving image is the same image warped by a random smooth \
                field (box-smoothed noise with the largest velocity --max-displacement voxels, \
                integrated by scaling and squaring, so it does not fold). Labels, or a label map made \
                from tissue probability maps (the most probable class, background = 1 − Σ maps), \
                follow the same field with nearest-neighbour sampling.
                """)

        @Option(help: "Input image, NIfTI.")
        var image: String

        @Option(help: "Label map of the image.")
        var labels: String?

        @Option(name: .customLong("tissue-maps"), help: "Comma-separated tissue probability maps (labels 1, 2, … in this order) instead of --labels.")
        var tissueMaps: String?

        @Option(help: "Resample to this isotropic voxel size (mm) first.")
        var spacing: Double?

        @Option(name: .customLong("max-displacement"), help: "Largest velocity component, voxels (of the resampled grid).")
        var maxDisplacement: Float = 4

        @Option(help: "Box window of the three smoothing passes (odd, voxels).")
        var smoothing: Int = 15

        @Option(help: "Seed of the random field.")
        var seed: UInt64 = 1

        @Option(name: .customLong("output-fixed"), help: "The fixed image (the input on the output grid).")
        var outputFixed: String

        @Option(name: .customLong("output-moving"), help: "The deformed image.")
        var outputMoving: String

        @Option(name: .customLong("output-fixed-labels"), help: "The labels on the output grid.")
        var outputFixedLabels: String?

        @Option(name: .customLong("output-moving-labels"), help: "The deformed labels.")
        var outputMovingLabels: String?

        @Option(name: .customLong("output-field"), help: "The applied field (voxels, 5D vector NIfTI): moving(p) = fixed(p + u(p)).")
        var outputField: String?

        func validate() throws {
            if labels != nil && tissueMaps != nil { throw ValidationError("give --labels or --tissue-maps, not both") }
            if (outputFixedLabels != nil || outputMovingLabels != nil) && labels == nil && tissueMaps == nil {
                throw ValidationError("label outputs need --labels or --tissue-maps")
            }
            if smoothing < 1 || smoothing % 2 == 0 { throw ValidationError("--smoothing must be odd and positive") }
            if let spacing, !(spacing > 0) { throw ValidationError("--spacing must be positive") }
        }

        func run() throws {
            try OutputPaths.checkDistinct(
                inputs: [image] + (labels.map { [$0] } ?? []) + (tissueMaps?.split(separator: ",").map(String.init) ?? []),
                outputs: [("--output-fixed", outputFixed), ("--output-moving", outputMoving)] + [
                    ("--output-fixed-labels", outputFixedLabels), ("--output-moving-labels", outputMovingLabels),
                    ("--output-field", outputField),
                ].compactMap { option, path in path.map { (option, $0) } })
            var image = try NIfTI.read(image)
            var labelMap: Volume?
            if let labels { labelMap = try NIfTI.read(labels) }
            if let tissueMaps {
                let maps = try tissueMaps.split(separator: ",").map { try NIfTI.read(String($0)) }
                labelMap = TissueLabels.fromProbabilityMaps(maps)
            }
            if let spacing {
                let s = SIMD3(repeating: spacing)
                image = image.resampled(toSpacing: s, linear: true)
                labelMap = labelMap?.resampled(toSpacing: s, linear: false)
            }
            let synthetic = try SyntheticPair.deforming(
                image, labels: labelMap,
                field: SmoothRandomField(smoothing: smoothing, maxDisplacement: maxDisplacement), seed: seed)
            try synthetic.write(
                fixed: outputFixed, moving: outputMoving, fixedLabels: outputFixedLabels,
                movingLabels: outputMovingLabels, field: outputField)
            print("\(image.width)×\(image.height)×\(image.depth) voxels; field: largest displacement "
                  + String(format: "%.2f", synthetic.largestDisplacement) + " voxels")
        }
    }
}
