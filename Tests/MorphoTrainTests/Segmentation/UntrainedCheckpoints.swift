import Foundation
import MorphoIO
@testable import MorphoTrain

/// Checkpoints of freshly initialised U-Nets (no training): different `seed`s give different
/// weights, so inference tests get distinct models in milliseconds.
enum UntrainedCheckpoints {
    static func config(dims: Int, seed: Int, classes: Int = 3) throws -> RunConfig {
        try RunConfig(yaml: """
            name: untrained
            model:
              unet: {dims: \(dims), channels: [4, 8], classes: \(classes)}
            data:
              phantom: {size: \(dims == 3 ? "[16, 16, 8]" : "[24, 24]"), count: 2}
              patch: {size: \(dims == 3 ? "[8, 8, 8]" : "[16, 16]")}
            training: {seed: \(seed)}
            inference: {overlap: 0.5}
            """)
    }

    /// Writes the checkpoint of `config(dims:seed:)` to `path`.
    static func write(dims: Int, seed: Int, classes: Int = 3, to path: String) throws {
        let c = try config(dims: dims, seed: seed, classes: classes)
        try Checkpoint(
            config: c, epoch: 0, rngState: [1, 2, 3, 4], bestScore: 0, bestEpoch: 0, staleValidations: 0,
            model: makeUNet(c).stateDictionary(), optimizer: []
        ).write(to: path)
    }

    /// A phantom image of `config(dims:seed:)`'s size, for inference.
    static func image(dims: Int, index: Int = 0) throws -> Volume {
        guard case .phantom(let p) = try config(dims: dims, seed: 0).data.source else { fatalError("phantom config") }
        return Phantom.make(p, index: index).image
    }
}
