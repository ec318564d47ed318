import ArgumentParser
import Foundation
import MorphoIO
import MorphoTrain

/// `morphoseg transform compose|invert`: transforms turned into one displacement field, and a
/// field's inverse.
struct TransformCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transform",
        abstract: "Compose transforms into one displacement field, or invert a field.",
        subcommands: [TransformCommand.Compose.self, TransformCommand.Invert.self])
}

extension TransformCommand {
    /// `morphoseg transform compose`: a chain as one field on a reference grid.
    struct Compose: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "compose",
            abstract: "Compose transforms (antsApplyTransforms order) into one displacement field on a reference grid.",
            discussion: """
                The field is written in ITK's convention (5D [x, y, z, 1, 3] float32, intent 1007, LPS \
                millimetres, fixed → moving), so `morphoseg apply -t FIELD` and antsApplyTransforms \
                -t FIELD give what the whole chain gives.
                """)

        @Option(help: "Reference image: the grid of the composed field.")
        var reference: String

        @Option(name: [.customShort("t"), .customLong("transform")], help: "A transform (repeatable, antsApplyTransforms order).")
        var transforms: [String] = []

        @Option(help: "Invert the N-th listed transform (1-based, repeatable; affines only).")
        var invert: [Int] = []

        @Option(help: "Output displacement field (.nii.gz).")
        var output: String

        @Option(name: .customLong("output-jacobian"), help: "Also write its Jacobian determinant (float NIfTI).")
        var outputJacobian: String?

        @Option(name: .customLong("nan-as"), help: "Replace NaN and infinite displacement-field components by this value, mm (default: refuse such fields).")
        var nanAs: Float?

        func validate() throws {
            if let nanAs, !nanAs.isFinite { throw ValidationError("--nan-as must be a finite number") }
            if transforms.isEmpty { throw ValidationError("give at least one -t") }
            if let bad = invert.first(where: { !(1...transforms.count).contains($0) }) {
                throw ValidationError("--invert \(bad): there are \(transforms.count) transforms")
            }
        }

        func run() throws {
            try OutputPaths.checkDistinct(
                inputs: [reference] + transforms.map { try PointTransform.argumentParts($0).path },
                outputs: [("--output", output)] + (outputJacobian.map { [("--output-jacobian", $0)] } ?? []))
            let grid = try NIfTI.read(reference)
            let chain = try TransformChain.load(transforms, inverted: Set(invert.map { $0 - 1 }), nanAs: nanAs)
            let field = chain.displacementField(on: grid)
            try field.write(to: output, like: grid)
            if let outputJacobian { try NIfTI.write(try FieldJacobian.determinant(of: field), to: outputJacobian, like: grid) }
            print("\(output): \(chain.transforms.count) transform(s) composed on \(grid.width)×\(grid.height)×\(grid.depth)")
        }
    }

    /// `morphoseg transform invert`: a field's inverse on its own grid.
    struct Invert: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "invert",
            abstract: "Invert a displacement field by fixed-point iteration; reports the inverse-consistency error in mm.")

        @Option(help: "Displacement field (ITK/ANTs, or MorphoSeg voxel form).")
        var field: String

        @Option(help: "Output inverse field (ITK convention).")
        var output: String

        @Option(help: "Largest number of iterations.")
        var iterations: Int = 100

        @Option(help: "Stop when the largest inverse-consistency error is below this (mm).")
        var tolerance: Double = 1e-3

        @Option(help: "Stop when the mean error improves by less than this fraction in one iteration (folds have no inverse).")
        var stall: Double = 0.01

        @Option(name: .customLong("output-jacobian"), help: "Also write the inverse's Jacobian determinant (float NIfTI).")
        var outputJacobian: String?

        @Flag(help: "Print the summary as JSON.")
        var json = false

        @Option(name: .customLong("nan-as"), help: "Replace NaN and infinite components of the field by this value, mm (default: refuse such a field).")
        var nanAs: Float?

        func validate() throws {
            if let nanAs, !nanAs.isFinite { throw ValidationError("--nan-as must be a finite number") }
        }

        func run() throws {
            try OutputPaths.checkDistinct(
                inputs: [field], outputs: [("--output", output)] + (outputJacobian.map { [("--output-jacobian", $0)] } ?? []))
            let u = try ITKDisplacementField.read(field).replacingNonFiniteComponents(with: nanAs, path: field)
            let result = FieldInversion.invert(u, maxIterations: iterations, tolerance: tolerance, stall: stall)
            try result.inverse.write(to: output)
            if let outputJacobian { try NIfTI.write(try FieldJacobian.determinant(of: result.inverse), to: outputJacobian) }
            if json {
                print("{\"iterations\": \(result.iterations), \"mean_error_mm\": \(result.meanError), \"max_error_mm\": \(result.maxError)}")
            } else {
                print("\(output): \(result.iterations) iterations; inverse-consistency error mean "
                    + String(format: "%.4f mm, max %.4f mm", result.meanError, result.maxError))
            }
        }
    }
}
