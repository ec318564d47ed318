import ArgumentParser

/// `morphoseg`: train, register, segment and inspect NIfTI volumes. Each subcommand lives in
/// its own file and only parses, validates and calls the library.
@main
struct MorphoSegCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "morphoseg",
        abstract: "Segmentation and registration networks for NIfTI volumes, in pure Swift on the CPU.",
        subcommands: [
            // Subcommands are registered here, one per file.
            Info.self,
            Bench.self,
            Conformance.self,
            Train.self,
            Segment.self,
            Evaluate.self,
            Plan.self,
            Demo.self,
            Register.self,
            Apply.self, TransformCommand.self,
        ])
}
