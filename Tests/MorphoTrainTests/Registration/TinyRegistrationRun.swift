import Foundation
import MorphoIO
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain

/// Test cases that train the tiny 2D registration run ("tiny-reg").
protocol TinyRegistrationRun {}

extension TinyRegistrationRun {
    /// A small 2D phantom registration run.
    func tinyConfig(
        epochs: Int = 10, registration: String = "", loss: String = "loss: {similarity: {kind: lcc, window: 7}}"
    ) -> String {
        """
        name: tiny-reg
        model:
          kind: registration
          network: {dims: 2, classes: 3}
        data:
          phantom: {size: [32, 32], count: 10, noise: 0.05, seed: 3}
          normalization: {kind: percentile}
          threads: 2
        registration:
          synthetic: {smoothing: 9, max_displacement: 3}
          validation_pairs: 6
          network: {encoder: [8, 16, 16], decoder: [16, 16, 16, 8]}
          \(loss)
        \(registration)
        training:
          epochs: \(epochs)
          steps_per_epoch: 20
          batch_size: 4
          optimizer: {kind: adam, lr: 0.003}
          lr_schedule: {kind: constant}
          validate_every: 2
        """
    }
}
