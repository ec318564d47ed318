import Foundation
import MorphoIO
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain

/// The segmentation task's batches and loss terms.
final class SegmentationTaskTests: XCTestCase, TinySegmentationRun {
    func testPhysicalRegularizationTargetFluxesComeWithTheBatchAndGiveTheSameTerm() throws {
        let config = try phantomConfig(epochs: 1, steps: 1, loss: "{regional: dice, prl: {weight: 0.5}}")
        let task = try SegmentationTask(config: config)
        var batch = task.makeBatch(3, 0)
        let fluxes = try XCTUnwrap(batch.prlTargetFluxes)
        XCTAssertEqual(fluxes.count, config.loss.idc.count)
        let fromBatch = task.loss(batch, epoch: 0)["prl"]!.value
        batch.prlTargetFluxes = nil
        let fromLabels = task.loss(batch, epoch: 0)["prl"]!.value
        XCTAssertEqual(fromBatch, fromLabels, accuracy: 1e-6 * max(1, abs(fromLabels)))
    }
}
