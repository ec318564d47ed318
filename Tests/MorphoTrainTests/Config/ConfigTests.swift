import Foundation
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

final class ConfigTests: XCTestCase {
    let minimal = """
        data:
          phantom: {count: 4}
        """

    func configError(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        do {
            _ = try RunConfig(yaml: yaml)
            XCTFail("expected a config error", file: file, line: line)
            return nil
        } catch let e as MorphoTrainError {
            return e.description
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return nil
        }
    }

    func testWrongTypeNamesTheKeyPathAndTheValue() {
        let yaml = minimal + "\ntraining:\n  optimizer:\n    lr: fast\n"
        XCTAssertEqual(configError(yaml), #"<config>: training.optimizer.lr: expected a number, got "fast""#)
    }

    func testQuotedNumberIsNotANumber() {
        let yaml = minimal + "\ntraining:\n  epochs: \"3\"\n"
        XCTAssertEqual(configError(yaml), #"<config>: training.epochs: expected an integer, got "3""#)
    }

    func testUnknownKeyIsAnErrorNamingIt() {
        let yaml = minimal + "\ntraining:\n  optimiser:\n    lr: 0.1\n"
        let message = configError(yaml) ?? ""
        XCTAssertTrue(message.hasPrefix("<config>: training.optimiser: unknown key"), message)
    }

    func testUnknownTopLevelSectionIsAnError() {
        let message = configError(minimal + "\nmodle: {}\n") ?? ""
        XCTAssertTrue(message.hasPrefix("<config>: modle: unknown key"), message)
    }

    func testBadChoiceListsTheAllowedValues() {
        let yaml = minimal + "\nmodel:\n  unet:\n    norm: layer\n"
        XCTAssertEqual(configError(yaml), #"<config>: model.unet.norm: expected one of instance, batch, none, got "layer""#)
    }

    func testDataSectionNeedsExactlyOneSource() {
        XCTAssertEqual(configError("model: {kind: segmentation}"), "<config>: data: needs one of phantom, manifest, images (+ labels) or dataset")
        let both = "data:\n  phantom: {}\n  manifest: m.csv\n"
        XCTAssertEqual(configError(both), "<config>: data: takes only one of phantom, manifest, images, dataset; got phantom and manifest")
    }

    func testStridesMustMatchChannels() {
        let yaml = minimal + "\nmodel:\n  unet:\n    channels: [8, 16, 32]\n    strides: [2]\n"
        XCTAssertEqual(configError(yaml), "<config>: model.unet.strides: needs 2 entries (one fewer than channels), got 1")
    }

    func testPatchSizeMustBeAMultipleOfTheDownsampling() {
        let yaml = "model:\n  unet: {dims: 3, channels: [8, 16, 32]}\ndata:\n  phantom: {}\n  patch: {size: [32, 30, 32]}\n"
        XCTAssertEqual(configError(yaml), "<config>: data.patch.size: [32, 30, 32] must be multiples of 4 (the product of model.unet.strides)")
    }

    func testOutOfRangeValueIsAnError() {
        let yaml = minimal + "\ndata2: 1\n"
        XCTAssertNotNil(configError(yaml))
        let fraction = "data:\n  phantom: {}\n  validation: {fraction: 1.5}\n"
        XCTAssertEqual(configError(fraction), "<config>: data.validation.fraction: must be in 0...0.9, got 1.5")
    }

    func testListElementErrorsNameTheIndex() {
        let yaml = minimal + "\nloss:\n  boundary: {idc: [1, 5]}\n"
        XCTAssertEqual(configError(yaml), "<config>: loss.boundary.idc[1]: class 5 is not in 0..<2")
    }

    func testInvalidYAMLIsASyntaxError() {
        let message = configError("data: [unclosed\n") ?? ""
        XCTAssertTrue(message.hasPrefix("<config>: invalid YAML"), message)
    }

    func testMissingConfigFileNamesTheFile() {
        XCTAssertThrowsError(try RunConfig.load("/nonexistent/run.yaml")) { error in
            XCTAssertEqual("\(error)", "/nonexistent/run.yaml: no such config file")
        }
    }

    func testDefaultsAreFilledIn() throws {
        let c = try RunConfig(yaml: minimal, defaultName: "tiny")
        XCTAssertEqual(c.name, "tiny")
        XCTAssertEqual(c.model.kind, .segmentation)
        XCTAssertEqual(c.model.unet.channels, [16, 32, 64, 128])
        XCTAssertEqual(c.model.unet.strides, [2, 2, 2])
        XCTAssertEqual(c.loss.regional, .dice_ce)
        XCTAssertEqual(c.loss.idc, [1])
        XCTAssertEqual(c.loss.schedule.kind, .rebalance)
        XCTAssertEqual(c.loss.schedule.floor, 0.1)
        XCTAssertEqual(c.training.optimizer.kind, .adam)
        XCTAssertEqual(c.training.optimizer.lr, 1e-3)
        XCTAssertEqual(c.output.dir, "runs/tiny")
        guard case .phantom(let p) = c.data.source else { return XCTFail("phantom expected") }
        XCTAssertEqual(p.count, 4)
        XCTAssertEqual(p.dims, 2)
        XCTAssertEqual(p.classes, 2)
    }

    func testResolvedConfigParsesBackToTheSameConfig() throws {
        let yaml = """
            name: round-trip
            model:
              unet: {dims: 3, channels: [4, 8], strides: [2], classes: 3}
            data:
              images: {t1: "data/*_t1.nii.gz", t2: "data/*_t2.nii.gz"}
              labels: data/*_seg.nii.gz
              spacing: [1.5, 1.5, 2]
              patch: {size: [32, 32, 16], foreground: 0.33}
              augmentation: {flip: [x], rotation: 5.5}
            loss:
              regional: balanced_ce
              boundary: {idc: [1, 2]}
            training:
              optimizer: {kind: sgd, lr: 0.01, momentum: 0.99}
              lr_schedule: {kind: step, step_size: 3}
            output: {dir: "out/with space"}
            """
        let c = try RunConfig(yaml: yaml)
        let again = try RunConfig(yaml: c.yaml, file: "config.yaml")
        XCTAssertEqual(c, again)
        XCTAssertEqual(again.data.modalities, ["t1", "t2"])
        XCTAssertEqual(again.output.dir, "out/with space")
    }

    func testDemoConfigLoads() throws {
        let path = Repository.config("demo-seg.yaml")
        let c = try RunConfig.load(path)
        XCTAssertEqual(c.name, "demo-seg")
        XCTAssertEqual(c.model.unet.classes, 3)
    }

    func testScheduleWeightsFollowTheFixtureDefinition() throws {
        // alpha_schedule_rebalance_0p01_0p01: (0.99, 0.01), (0.98, 0.02), …, floor 0.1.
        let c = try RunConfig(yaml: minimal + "\nloss:\n  schedule: {cap: 1.0}\n")
        let s = c.loss.schedule.alphaSchedule
        XCTAssertEqual(s.weights(epoch: 0).regional, 0.99, accuracy: 1e-12)
        XCTAssertEqual(s.weights(epoch: 0).boundary, 0.01, accuracy: 1e-12)
        XCTAssertEqual(s.weights(epoch: 59).regional, 0.4, accuracy: 1e-12)
        XCTAssertEqual(s.weights(epoch: 95).regional, 0.1, accuracy: 1e-12)
    }

    func testLearningRateSchedules() throws {
        func schedule(_ yaml: String) throws -> LRScheduleConfig {
            try RunConfig(yaml: minimal + "\ntraining:\n  lr_schedule: \(yaml)\n").training.lrSchedule
        }
        let poly = try schedule("{kind: poly, power: 1}")
        XCTAssertEqual(poly.rate(base: 1, epoch: 5, epochs: 10), 0.5, accuracy: 1e-6)
        let cosine = try schedule("{kind: cosine}")
        XCTAssertEqual(cosine.rate(base: 1, epoch: 5, epochs: 10), 0.5, accuracy: 1e-6)
        XCTAssertEqual(cosine.rate(base: 1, epoch: 0, epochs: 10), 1, accuracy: 1e-6)
        let step = try schedule("{kind: step, step_size: 2, gamma: 0.1}")
        XCTAssertEqual(step.rate(base: 1, epoch: 5, epochs: 10), 0.01, accuracy: 1e-6)
        let warm = try schedule("{kind: constant, warmup_epochs: 3}")
        XCTAssertEqual(warm.rate(base: 1, epoch: 0, epochs: 10), 0.25, accuracy: 1e-6)
        XCTAssertEqual(warm.rate(base: 1, epoch: 3, epochs: 10), 1, accuracy: 1e-6)
    }
}

final class TaskKindDeclarationTests: XCTestCase {
    func testShippedConfigsDeclareTheirTask() throws {
        let configs = Repository.configs
        XCTAssertEqual(try TaskConfig.load(configs + "/demo-seg.yaml").kind, .segmentation)
        XCTAssertEqual(try TaskConfig.load(configs + "/demo-reg.yaml").kind, .registration)
        XCTAssertEqual(try TaskConfig.load(configs + "/joint-2d.yaml").kind, .joint)
        XCTAssertThrowsError(try TaskConfig.load(configs + "/does-not-exist.yaml"))
    }
}
