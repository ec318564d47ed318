import Foundation
import MorphoIO
import MorphoKernels
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// The joint run config.
final class JointConfigTests: XCTestCase, TinyJointRun {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("joint")
    }

    func testConfigRejectsTheRegistrationDiceTermAndOtherKinds() throws {
        let segmentationKind = try config().yaml.replacingOccurrences(of: "kind: joint", with: "kind: segmentation")
        XCTAssertThrowsError(try JointRunConfig(yaml: segmentationKind)) { error in
            XCTAssertTrue("\(error)".contains("model.kind"), "\(error)")
        }
        let withDice = try config().yaml.replacingOccurrences(of: "    dice:\n      weight: 0", with: "    dice:\n      weight: 1")
        XCTAssertNotEqual(withDice, try config().yaml)
        XCTAssertThrowsError(try JointRunConfig(yaml: withDice)) { error in
            XCTAssertTrue("\(error)".contains("registration.loss.dice.weight"), "\(error)")
        }
        // The resolved YAML reads back to the same config, and is recognised as joint.
        try config().yaml.write(toFile: tempDir + "/j.yaml", atomically: true, encoding: .utf8)
        XCTAssertEqual(try TaskConfig.load(tempDir + "/j.yaml").kind, .joint)
        XCTAssertEqual(try JointRunConfig.load(tempDir + "/j.yaml").yaml, try config().yaml)
    }

    /// `joint.warped_labels` and `data.augmentation` are read, echoed in the resolved YAML and
    /// read back; a negative weight is refused naming its key.
    func testWarpedLabelsAndAugmentationKeysRoundTripThroughTheResolvedConfig() throws {
        let c = try config(augmentation: "{flip: [x], rotation: 10}", joint: "warped_labels: {weight: 0.25, detach: false}")
        XCTAssertEqual(c.joint.warpedLabelsWeight.start, 0.25)
        XCTAssertFalse(c.joint.warpedLabelsDetach)
        XCTAssertEqual(c.run.data.augmentation.rotation, 10)
        XCTAssertTrue(c.yaml.contains("warped_labels:"), c.yaml)
        XCTAssertEqual(try JointRunConfig(yaml: c.yaml), c)
        XCTAssertThrowsError(try config(joint: "warped_labels: {weight: -1}")) { error in
            XCTAssertTrue("\(error)".contains("joint.warped_labels.weight"), "\(error)")
        }
    }
}
