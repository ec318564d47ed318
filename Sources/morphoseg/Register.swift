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
                (LCC similarity + λ·grad-l2 smoothness, Adam), the way classical tools work. \
                --diffeomorphic optimises a stationary velocity field instead and writes its exponential \
                (scaling and squaring, --integration-steps), which does not fold. --model CKPT --refine N \
                starts instance optimisation from the network's field and runs N Adam steps at full \
                resolution (--learning-rate, --smoothness, --lcc-window apply); the summary reports the \
                network's field alone beside the refined one.

                Linear stages (--transform): by default rigid then affine stages run first (mutual \
                information, world coordinates, centres of mass aligned to start, 3-level pyramid), \
                as ANTs' SyN preset does; the deformable stage then registers the moving image \
                resampled through the affine. --output-affine writes the linear map as an ITK \
                transform (.mat or .txt, LPS, fixed → moving, as ANTs' 0GenericAffine.mat) and the \
                field holds the deformable part only, so the whole map is \
                `morphoseg apply -t FIELD -t AFFINE` (antsApplyTransforms order). --fixed-mask and \
                --moving-mask (nonzero = inside, on their image's grid) restrict the similarity of \
                both stages.

                The summary reports Dice per label before and after (when --fixed-labels and \
                --moving-labels are given), similarity before and after, the folding fraction \
                (det J ≤ 0) and the std of log|J|, then each stage: its loss before and after, its \
                time and, for linear stages, the rotation (degrees), scales, shear and translation \
                (mm) of the polar decomposition A = R·S of the result (world RAS).
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

        @Option(name: .customLong("smoothness"), help: "Weight λ of the grad-l2 smoothness term (--optimize; default 2 with lcc, 8 with mi).")
        var smoothness: Double?

        @Option(name: .customLong("learning-rate"), help: "Adam step size on the field, voxels (--optimize; default 0.25 with lcc, 0.5 with mi).")
        var learningRate: Double?

        @Option(name: .customLong("lcc-window"), help: "LCC window (odd, voxels).")
        var lccWindow: Int = InstanceOptimization.Settings().lccWindow

        // MARK: Linear stages, similarity and masks (issue 27)

        @Option(help: "Stages: rigid, affine (rigid then affine), deformable, rigid+deformable or affine+deformable (the default; with --model, rigid+deformable when the network was trained on prealign: rigid).")
        var transform: RegistrationTransform?

        @Option(help: "Start of the linear stages: com (centres of mass), moments (principal axes too) or none.")
        var initialize: LinearInitialization = LinearRegistration.Settings().initialization

        @Option(name: .customLong("similarity"), help: "Similarity of the deformable stage (--optimize): lcc, mi, mse or gcc.")
        var similarity: SimilarityKind = InstanceOptimization.Settings().similarity

        @Option(name: .customLong("linear-similarity"), help: "Similarity of the linear stages: mi, lcc, mse or gcc.")
        var linearSimilarity: SimilarityKind = LinearRegistration.Settings().similarity

        @Option(name: .customLong("fixed-mask"), help: "Region of the fixed image (nonzero, on its grid) the similarity is measured in.")
        var fixedMask: String?

        @Option(name: .customLong("moving-mask"), help: "Region of the moving image (nonzero, on its grid) the similarity is measured in.")
        var movingMask: String?

        @Option(name: .customLong("output-affine"), help: "Where to write the linear map (ITK transform: .mat binary or .txt/.tfm text).")
        var outputAffine: String?

        func linearSettings() -> LinearRegistration.Settings {
            var s = LinearRegistration.Settings()
            s.initialization = initialize
            s.similarity = linearSimilarity
            return s
        }

        func validateLinearOptions() throws {
            if outputAffine != nil, let transform, transform.linearStages.isEmpty {
                throw ValidationError("--output-affine needs a linear stage (--transform rigid, affine or affine+deformable)")
            }
            if let outputAffine, !ITKTransformFile.isAffineFile(outputAffine) {
                throw ValidationError("--output-affine \(outputAffine): expected .mat, .txt or .tfm")
            }
        }

        // MARK: Folding-free option and network refinement (issue #27)

        @Flag(help: "Optimise a stationary velocity field integrated by scaling and squaring (no folding) instead of the displacement (--optimize).")
        var diffeomorphic = false

        @Option(name: .customLong("integration-steps"), help: "Scaling-and-squaring steps of --diffeomorphic.")
        var integrationSteps: Int = InstanceOptimization.Settings().integrationSteps

        @Option(name: .customLong("velocity-grid-factor"), help: "--diffeomorphic integrates the velocity on a grid this many times coarser than each level's (1 = the level's grid).")
        var velocityGridFactor: Int = InstanceOptimization.Settings().velocityGridFactor

        @Option(help: "Refine the network's field (--model) by this many Adam steps of instance optimisation at full resolution.")
        var refine: Int?

        /// The deformable method: the network, the network refined, or instance optimisation.
        func deformableMethod() throws -> RegistrationMethod {
            guard let model else { return .optimize(try settings()) }
            let network = try RegistrationModel.load(model)
            guard let refine else { return .model(network) }
            return .refinedModel(network, ModelRefinement(iterations: refine, optimization: try settings()))
        }

        func validateDeformableOptions() throws {
            if diffeomorphic && !optimize { throw ValidationError("--diffeomorphic is for --optimize") }
            if refine != nil && model == nil { throw ValidationError("--refine needs --model") }
            if let refine, refine < 0 { throw ValidationError("--refine: expected a non-negative number of steps, got \(refine)") }
        }

        // MARK: -

        @Option(name: .customLong("nan-as"), help: "Replace NaN and infinite voxels of the fixed and moving images by this value (default: refuse such images).")
        var nanAs: Float?

        @OptionGroup var compute: ComputeOptions

        func validate() throws {
            try validateDeformableOptions()
            if (model == nil) == !optimize {
                throw ValidationError("give exactly one of --model CKPT and --optimize")
            }
            try validateLinearOptions()
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
            var s = InstanceOptimization.Settings(similarity: similarity)
            s.levels = levels
            s.iterations = counts.count == 1 ? Array(repeating: counts[0], count: levels) : counts
            if let smoothness { s.smoothness = Float(smoothness) }
            if let learningRate { s.learningRate = Float(learningRate) }
            s.lccWindow = lccWindow
            s.diffeomorphic = diffeomorphic
            s.integrationSteps = integrationSteps
            s.velocityGridFactor = velocityGridFactor
            try s.validate()
            return s
        }

        func run() throws {
            ComputeSettings.apply(threads: compute.threads)
            let files = RegistrationPairFiles(fixed: fixed, moving: moving, fixedLabels: fixedLabels, movingLabels: movingLabels)
            let outputs = [("--output-warped", outputWarped)] + [
                ("--output-labels", outputLabels), ("--output-field", outputField), ("--output-jacobian", outputJacobian),
                ("--output-affine", outputAffine),
            ].compactMap { option, path in path.map { (option, $0) } }
            try OutputPaths.checkDistinct(
                inputs: [fixed, moving] + [fixedLabels, movingLabels, model, fixedMask, movingMask].compactMap { $0 }, outputs: outputs)
            let start = Date()
            let cpuStart = RegistrationSummary.processCPUSeconds()
            // MorphoTrainError and MorphoIOError describe themselves in one line naming the file;
            // ArgumentParser prints that line and exits with status 1.
            let inputs = try StagedRegistration.Inputs.load(files, fixedMask: fixedMask, movingMask: movingMask, nanAs: nanAs)
            let method = try deformableMethod()
            let stages = transform ?? RegistrationTransform.standard(for: method)
            let staged = StagedRegistration(transform: stages, linear: linearSettings(), method: method, lccWindow: lccWindow)
            let outcome = try staged.run(inputs)
            let (result, pair) = (outcome.result, outcome.pair)
            // All outputs or none: a failure on a later one removes those this run already wrote.
            let written = OutputSet(outputs.map(\.1))
            do {
                try result.write(warped: outputWarped, field: outputField, labels: outputLabels, fieldUnits: fieldUnits, pair: pair)
                if let outputJacobian {
                    let field = ITKDisplacementField(voxels: DisplacementFieldVolume.volume(fromFlow: result.flow, on: pair.fixed))
                    try NIfTI.write(try FieldJacobian.determinant(of: field), to: outputJacobian, like: pair.fixed)
                }
                if let outputAffine, let linear = outcome.linear { try ITKTransformFile.write(linear.itk, to: outputAffine) }
            } catch {
                written.removeWritten()
                throw error
            }
            let summary = RegistrationSummary(
                files: files,
                outputs: RegistrationOutput.list(
                    warped: outputWarped, labels: outputLabels, field: outputField, fieldUnits: fieldUnits, jacobian: outputJacobian,
                    affine: outputAffine),
                quality: result.quality, stages: outcome.stages, refinement: result.refinement,
                seconds: Date().timeIntervalSince(start),
                cpuSeconds: RegistrationSummary.processCPUSeconds() - cpuStart, threads: ComputeSettings.threads)
            if json {
                print(try summary.json())
            } else {
                print(result.quality.summary)
                for stage in summary.stages { print(stage.summary) }
                if let refinement = result.refinement { print(refinement.summary) }
                for output in summary.outputs { print("\(output.kind): \(output.path) (\(output.convention))") }
                print(String(format: "time: %.2f s wall, %.2f s CPU (%d threads)", summary.seconds, summary.cpuSeconds, summary.threads))
            }
        }
    }
}

extension FieldUnits: ExpressibleByArgument {}
extension RegistrationTransform: ExpressibleByArgument {}
extension LinearInitialization: ExpressibleByArgument {}
extension SimilarityKind: ExpressibleByArgument {}
extension SyntheticContrast: ExpressibleByArgument {}

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

                Hard pairs: --rotate, --scale and --shift also misalign the moving image after the \
                deformation, in world mm about the image centre (x ↦ c + R·S·(x − c) + t); one value \
                draws each axis uniformly within ± it (from the seed), three comma-separated values \
                (x, y, z) are exact. --contrast t2 remaps the moving image's T1 intensities \
                non-monotonically (CSF bright, GM 0.55, WM 0.25; knots at the GM and WM medians, so it \
                needs labels 1 = GM, 2 = WM). Labels follow the same total map; --output-field then \
                writes the total map.
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

        @Option(name: .customLong("output-field"), help: "The applied field, the total map with any misalignment (voxels, 5D vector NIfTI): moving(p) = fixed(p + u(p)).")
        var outputField: String?

        // MARK: Hard pairs: misalignment and contrast (issue #27)

        @Option(help: "Rotation about world x, y, z, degrees: one value = random within ± it per axis, three = exact.")
        var rotate: String?

        @Option(help: "Scaling along world x, y, z as a fraction (0.06 = 6 %): one value = random within ± it, three = exact.")
        var scale: String?

        @Option(help: "Shift along world x, y, z, mm: one value = random within ± it per axis, three = exact.")
        var shift: String?

        @Option(name: .customLong("nan-as"), help: "Replace NaN and infinite voxels of the image by this value (default: refuse such an image; never applied to --labels or --tissue-maps).")
        var nanAs: Float?

        @Option(help: "Contrast of the moving image: t1 (unchanged) or t2 (T2-like remap; needs labels).")
        var contrast: SyntheticContrast = .t1

        /// One value (a bound for random draws) or three exact values, from a comma-separated option.
        static func axisValues(_ text: String?, option: String) throws -> (bound: Double?, exact: SIMD3<Double>?) {
            guard let text else { return (nil, nil) }
            let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard values.allSatisfy({ $0?.isFinite == true }) else { throw ValidationError("\(option): expected numbers, got '\(text)'") }
            switch values.count {
            case 1:
                guard values[0]! >= 0 else { throw ValidationError("\(option): a bound must be non-negative, got '\(text)'") }
                return (values[0]!, nil)
            case 3: return (nil, SIMD3(values[0]!, values[1]!, values[2]!))
            default: throw ValidationError("\(option): expected one value (a bound) or three (x, y, z), got '\(text)'")
            }
        }

        /// The misalignment the options ask for (random parts drawn from the seed), or nil.
        func misalignment(dims: Int) throws -> SyntheticMisalignment? {
            let r = try Self.axisValues(rotate, option: "--rotate")
            let s = try Self.axisValues(scale, option: "--scale")
            let t = try Self.axisValues(shift, option: "--shift")
            guard rotate != nil || scale != nil || shift != nil else { return nil }
            var m = SyntheticMisalignment.random(
                maxRotationDegrees: r.bound ?? 0, maxScale: s.bound ?? 0, maxShift: t.bound ?? 0, dims: dims, seed: seed)
            if let exact = r.exact { m.rotationDegrees = exact }
            if let exact = s.exact { m.scale = 1 + exact }
            if let exact = t.exact { m.shift = exact }
            guard (0..<3).allSatisfy({ m.scale[$0] > 0 }) else { throw ValidationError("--scale: factors must stay positive") }
            if dims == 2 && (m.rotationDegrees.x != 0 || m.rotationDegrees.y != 0 || m.scale.z != 1 || m.shift.z != 0) {
                throw ValidationError("a 2D image takes in-plane misalignment only: rotation about z, scale and shift along x and y")
            }
            return m
        }

        // MARK: -

        func validate() throws {
            _ = try misalignment(dims: 3)
            if contrast == .t2 && labels == nil && tissueMaps == nil { throw ValidationError("--contrast t2 needs --labels or --tissue-maps (1 = GM, 2 = WM)") }
            if labels != nil && tissueMaps != nil { throw ValidationError("give --labels or --tissue-maps, not both") }
            if (outputFixedLabels != nil || outputMovingLabels != nil) && labels == nil && tissueMaps == nil {
                throw ValidationError("label outputs need --labels or --tissue-maps")
            }
            if smoothing < 1 || smoothing % 2 == 0 { throw ValidationError("--smoothing must be odd and positive") }
            if let spacing, !(spacing > 0) { throw ValidationError("--spacing must be positive") }
            if let nanAs, !nanAs.isFinite { throw ValidationError("--nan-as must be a finite number") }
        }

        func run() throws {
            try OutputPaths.checkDistinct(
                inputs: [image] + (labels.map { [$0] } ?? []) + (tissueMaps?.split(separator: ",").map(String.init) ?? []),
                outputs: [("--output-fixed", outputFixed), ("--output-moving", outputMoving)] + [
                    ("--output-fixed-labels", outputFixedLabels), ("--output-moving-labels", outputMovingLabels),
                    ("--output-field", outputField),
                ].compactMap { option, path in path.map { (option, $0) } })
            var image = try Volume.readImage(image, nanAs: nanAs)
            var labelMap: Volume?
            if let labels { labelMap = try Volume.readLabelMap(labels) }
            if let tissueMaps {
                let maps = try tissueMaps.split(separator: ",").map { try Volume.readLabelMap(String($0)) }
                labelMap = TissueLabels.fromProbabilityMaps(maps)
            }
            if let spacing {
                let s = SIMD3(repeating: spacing)
                image = image.resampled(toSpacing: s, linear: true)
                labelMap = labelMap?.resampled(toSpacing: s, linear: false)
            }
            let misalignment = try misalignment(dims: image.is2D ? 2 : 3)
            let synthetic = try SyntheticPair.deforming(
                image, labels: labelMap,
                field: SmoothRandomField(smoothing: smoothing, maxDisplacement: maxDisplacement), seed: seed,
                misalignment: misalignment, contrast: contrast)
            try synthetic.write(
                fixed: outputFixed, moving: outputMoving, fixedLabels: outputFixedLabels,
                movingLabels: outputMovingLabels, field: outputField)
            print("\(image.width)×\(image.height)×\(image.depth) voxels; field: largest displacement "
                  + String(format: "%.2f", synthetic.largestDisplacement) + " voxels"
                  + (misalignment.map { "; misalignment: " + $0.description } ?? "")
                  + (contrast == .t1 ? "" : "; contrast: \(contrast.rawValue)"))
        }
    }
}
