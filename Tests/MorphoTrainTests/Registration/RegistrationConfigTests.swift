import Foundation
import MorphoIO
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// The registration run config: its section errors, its resolved form, the demo config.
final class RegistrationConfigTests: XCTestCase, TinyRegistrationRun {
    func testRegistrationSectionErrorsNameTheKey() {
        func message(_ registration: String) -> String {
            do {
                _ = try RegistrationRunConfig(yaml: tinyConfig(registration: registration), file: "x.yaml")
                return "no error"
            } catch { return "\(error)" }
        }
        XCTAssertEqual(message("  pairs: everything"),
                       "x.yaml: registration.pairs: expected one of synthetic, random, atlas, listed, got \"everything\"")
        XCTAssertTrue(message("  extra: 1").hasPrefix("x.yaml: registration.extra: unknown key"))
        XCTAssertEqual(message("  pairs: atlas"), "x.yaml: registration.atlas: pairs: atlas needs the atlas image")
        func lossMessage(_ loss: String) -> String {
            do {
                _ = try RegistrationRunConfig(yaml: tinyConfig(loss: loss), file: "x.yaml")
                return "no error"
            } catch { return "\(error)" }
        }
        XCTAssertTrue(lossMessage("loss: {smoothness: {kind: grad_l2, wieght: 1}}").hasPrefix("x.yaml: registration.loss.smoothness.wieght: unknown key"))
        XCTAssertEqual(lossMessage("loss: {similarity: {window: 8}}"), "x.yaml: registration.loss.similarity.window: must be odd, got 8")
        XCTAssertEqual(lossMessage("loss: {dice: {weight: {start: 0.1, step: 0.05, cap: 0.5}}}"), "no error")
    }

    func testResolvedConfigLoadsBackToTheSameConfig() throws {
        let config = try RegistrationRunConfig(yaml: tinyConfig(loss: "loss: {dice: {weight: {start: 0.1, step: 0.05, cap: 0.5}}}"))
        XCTAssertEqual(try RegistrationRunConfig(yaml: config.yaml), config)
        let weight = config.registration.diceWeight.schedule
        XCTAssertEqual(weight.weight(epoch: 2), 0.2, accuracy: 1e-12)
        XCTAssertEqual(weight.weight(epoch: 20), 0.5)
    }

    func testDemoConfigIsARegistrationRun() throws {
        let path = Repository.config("demo-reg.yaml")
        let config = try RegistrationRunConfig.load(path)
        XCTAssertEqual(config.run.model.kind, .registration)
        XCTAssertEqual(config.registration.pairs, .synthetic)
    }
}
