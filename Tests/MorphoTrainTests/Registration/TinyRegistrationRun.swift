import Foundation
import MorphoIO
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// Test cases that train the tiny 2D registration run ("tiny-reg").
protocol TinyRegistrationRun {}

extension TinyRegistrationRun {
    /// A small 2D phantom registration run.
    func tinyConfig(
        epochs: Int = 10, registration: String = "", loss: String = "loss: {similarity: {kind: lcc, window: 7}}"
    ) -> String {
        TinyConfigs.registration(
            epochs: epochs, steps: 20, threads: 2, optimizer: "{kind: adam, lr: 0.003}", lrSchedule: "{kind: constant}",
            validateEvery: 2, loss: loss, extra: registration)
    }
}
