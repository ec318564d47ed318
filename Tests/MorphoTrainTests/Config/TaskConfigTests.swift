import Foundation
import MorphoLosses
import MorphoNN
import MorphoTensor
import XCTest
@testable import MorphoTrain

final class TaskConfigTests: XCTestCase {
    var tempDir = ""
    let configs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../Configs").standardized.path

    override func setUpWithError() throws {
        tempDir = NSTemporaryDirectory() + "task-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tempDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: tempDir)
    }

    let segmentationYAML = """
        name: tiny-seg
        model: {kind: segmentation, unet: {dims: 2, classes: 3}}
        data: {phantom: {size: [32, 32], count: 6}}
        """

    func registrationYAML(network: String = "network: {dims: 2, classes: 3}") -> String {
        """
        name: tiny-reg
        model:
          kind: registration
          \(network)
        data:
          phantom: {size: [32, 32], count: 6}
          normalization: {kind: percentile}
        registration:
          validation_pairs: 2
          network: {encoder: [8, 16], decoder: [16, 16]}
        """
    }

    let jointYAML = """
        name: tiny-joint
        model: {kind: joint, unet: {dims: 2, channels: [8, 16], classes: 3}}
        data: {phantom: {size: [32, 32], count: 6}}
        registration: {network: {encoder: [8, 16], decoder: [16, 16]}}
        joint: {strategy: alternating, alternate_steps: 2}
        """

    func write(_ text: String, _ name: String) throws -> String {
        let path = tempDir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// What `body` writes on stderr.
    func standardError(of body: () throws -> Void) rethrows -> String {
        let pipe = Pipe()
        let saved = dup(2)
        dup2(pipe.fileHandleForWriting.fileDescriptor, 2)
        defer {
            dup2(saved, 2)
            close(saved)
        }
        try body()
        pipe.fileHandleForWriting.closeFile()
        dup2(saved, 2)
        return String(data: pipe.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8) ?? ""
    }

    func configError(_ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try body()
            XCTFail("expected an error", file: file, line: line)
        } catch {
            return "\(error)"
        }
        return ""
    }

    // MARK: From YAML

    func testModelKindPicksTheConfigTypeAndMatchesTheTaskLoader() throws {
        let seg = try TaskConfig(yaml: segmentationYAML)
        guard case .segmentation(let s) = seg else { return XCTFail("\(seg.kind)") }
        XCTAssertEqual(s, try RunConfig(yaml: segmentationYAML))
        XCTAssertEqual(seg.yaml, s.yaml)

        let reg = try TaskConfig(yaml: registrationYAML())
        guard case .registration(let r) = reg else { return XCTFail("\(reg.kind)") }
        XCTAssertEqual(r, try RegistrationRunConfig(yaml: registrationYAML()))
        XCTAssertEqual(reg.run, r.run)
        XCTAssertEqual(reg.yaml, r.yaml)

        let joint = try TaskConfig(yaml: jointYAML)
        guard case .joint(let j) = joint else { return XCTFail("\(joint.kind)") }
        XCTAssertEqual(j, try JointRunConfig(yaml: jointYAML))
        XCTAssertEqual(j.joint.strategy, .alternating)
        XCTAssertEqual(joint.yaml, j.yaml)
        XCTAssertEqual([seg.kind, reg.kind, joint.kind], [.segmentation, .registration, .joint])
    }

    func testAbsentKindIsSegmentation() throws {
        XCTAssertEqual(try TaskConfig(yaml: "data: {phantom: {count: 4}}").kind, .segmentation)
    }

    func testResolvedYAMLReadsBackToTheSameConfig() throws {
        for yaml in [segmentationYAML, registrationYAML(), jointYAML] {
            let c = try TaskConfig(yaml: yaml)
            XCTAssertEqual(try TaskConfig(yaml: c.yaml, defaultName: "other"), c)
        }
    }

    // MARK: From a file

    func testShippedConfigsLoadAsTheirKind() throws {
        XCTAssertEqual(try TaskConfig.load(configs + "/demo-seg.yaml"), .segmentation(try RunConfig.load(configs + "/demo-seg.yaml")))
        XCTAssertEqual(
            try TaskConfig.load(configs + "/demo-reg.yaml"), .registration(try RegistrationRunConfig.load(configs + "/demo-reg.yaml")))
        XCTAssertEqual(try TaskConfig.load(configs + "/joint-2d.yaml"), .joint(try JointRunConfig.load(configs + "/joint-2d.yaml")))
    }

    func testEveryShippedConfigLoadsWithoutWarnings() throws {
        let root = URL(fileURLWithPath: configs).deletingLastPathComponent().path
        var paths = try FileManager.default.contentsOfDirectory(atPath: configs).filter { $0.hasSuffix(".yaml") }.map { configs + "/" + $0 }
        let examples = FileManager.default.enumerator(atPath: root + "/Examples")?.allObjects as? [String] ?? []
        paths += examples.filter { $0.hasSuffix(".yaml") }.map { root + "/Examples/" + $0 }
        XCTAssertGreaterThanOrEqual(paths.count, 10)
        for path in paths {
            var config: TaskConfig?
            let warnings = standardError { config = try? TaskConfig.load(path) }
            XCTAssertNotNil(config, path)
            XCTAssertEqual(warnings, "", path)
        }
    }

    func testLoadingReadsTheFileOnce() throws {
        for name in ["demo-seg", "demo-reg", "joint-2d"] {
            let before = ConfigFile.readCount
            let c = try TaskConfig.load(configs + "/\(name).yaml")
            XCTAssertEqual(ConfigFile.readCount - before, 1, name)
            XCTAssertEqual(c.run.name, name)
        }
    }

    func testTheFileStemNamesAnUnnamedRun() throws {
        let path = try write("data: {phantom: {count: 4}}\n", "stem-name.yaml")
        XCTAssertEqual(try TaskConfig.load(path).run.name, "stem-name")
    }

    func testErrorsNameTheFileAndTheKey() throws {
        let bad = try write(registrationYAML() + "\ntraining: {epochs: many}\n", "bad.yaml")
        XCTAssertEqual(configError { try TaskConfig.load(bad) }, #"\#(bad): training.epochs: expected an integer, got "many""#)
        let kind = try write("model: {kind: morphing}\n", "kind.yaml")
        XCTAssertEqual(
            configError { try TaskConfig.load(kind) }, #"\#(kind): model.kind: expected one of segmentation, registration, joint, got "morphing""#)
        let missing = tempDir + "/missing.yaml"
        XCTAssertEqual(configError { try TaskConfig.load(missing) }, "\(missing): no such config file")
    }

    // MARK: The registration network's key

    func testRegistrationNetworkIsModelNetwork() throws {
        let yaml = registrationYAML(network: "network: {dims: 3, classes: 4}")
            .replacingOccurrences(of: "size: [32, 32]", with: "size: [16, 16, 16]")
        let c = try TaskConfig(yaml: yaml)
        XCTAssertEqual(c.run.model.dims, 3)
        XCTAssertEqual(c.run.model.classes, 4)
        XCTAssertTrue(c.yaml.contains("model:\n  kind: registration\n  network:\n    dims: 3\n    classes: 4\n"), c.yaml)
        XCTAssertFalse(c.yaml.contains("unet"), c.yaml)
    }

    func testDeprecatedUNetKeyOfARegistrationConfigReadsTheSameWithAWarning() throws {
        let path = try write(registrationYAML(network: "unet: {dims: 2, classes: 3}"), "old-reg.yaml")
        var old: TaskConfig?
        let warning = try standardError { old = try TaskConfig.load(path) }
        XCTAssertEqual(old, try TaskConfig(yaml: registrationYAML(), file: path, defaultName: "old-reg"))
        XCTAssertEqual(warning.split(separator: "\n").count, 1, warning)
        XCTAssertTrue(warning.hasPrefix("\(path): model.unet: warning: deprecated"), warning)
    }

    func testRegistrationConfigTakesOnlyOneNetworkKey() {
        let both = registrationYAML(network: "network: {dims: 2}\n  unet: {dims: 2}")
        XCTAssertTrue(configError { try TaskConfig(yaml: both) }.hasPrefix("<config>: model.unet: a registration network is described by model.network only"))
    }

    func testSegmentationAndJointHaveNoModelNetwork() {
        let seg = "model: {kind: segmentation, network: {dims: 2}}\ndata: {phantom: {count: 4}}\n"
        XCTAssertTrue(configError { try TaskConfig(yaml: seg) }.hasPrefix("<config>: model.network: unknown key"))
        let joint = jointYAML.replacingOccurrences(of: "model: {kind: joint,", with: "model: {kind: joint, network: {dims: 2},")
        XCTAssertTrue(configError { try TaskConfig(yaml: joint) }.hasPrefix("<config>: model.network: unknown key"))
    }

    // MARK: From a checkpoint

    func checkpoint(_ config: TaskConfig, embedding yaml: String? = nil, metadata: [String: String]) throws -> String {
        var ckpt = Checkpoint(
            config: config.run, epoch: 1, rngState: [1, 2, 3, 4], bestScore: 0.5, bestEpoch: 1, staleValidations: 0,
            model: [("w", Tensor(shape: [1], data: [0]))], optimizer: [])
        if let yaml { ckpt.configYAML = yaml }
        ckpt.extraMetadata = metadata
        let path = tempDir + "/\(config.run.name).safetensors"
        try ckpt.write(to: path)
        return path
    }

    func testEachKindComesBackFromItsCheckpoint() throws {
        let seg = try TaskConfig(yaml: segmentationYAML)
        let segPath = try checkpoint(seg, metadata: [:])
        XCTAssertEqual(try TaskConfig(checkpoint: Checkpoint.read(segPath), path: segPath), seg)

        let reg = try TaskConfig(yaml: registrationYAML())
        guard case .registration(let r) = reg else { return XCTFail() }
        let regPath = try checkpoint(
            reg, metadata: [Checkpoint.registrationSectionKey: ConfigValue.map([("registration", r.registration.resolved)]).yaml()])
        XCTAssertEqual(try TaskConfig(checkpoint: Checkpoint.read(regPath), path: regPath), reg)

        let joint = try TaskConfig(yaml: jointYAML)
        guard case .joint(let j) = joint else { return XCTFail() }
        let jointPath = try checkpoint(joint, metadata: [Checkpoint.jointSectionKey: j.extraYAML])
        XCTAssertEqual(try TaskConfig(checkpoint: Checkpoint.read(jointPath), path: jointPath), joint)
        XCTAssertEqual(try JointRunConfig.load(checkpoint: jointPath), j)
    }

    func testRegistrationCheckpointWithoutItsSectionIsRefused() throws {
        let path = try checkpoint(try TaskConfig(yaml: registrationYAML()), metadata: [:])
        XCTAssertThrowsError(try TaskConfig(checkpoint: Checkpoint.read(path), path: path)) { error in
            XCTAssertEqual(error as? MorphoTrainError, .modelMismatch(path: path, reason: "no registration section in the checkpoint metadata"))
        }
    }

    func testOldRegistrationCheckpointWithModelUNetStillLoads() throws {
        // The resolved YAML a registration run embedded before `model.network` existed.
        let old = """
            # Resolved MorphoSeg config: every key with the value the run used (see Configs/README.md).
            name: tiny-reg
            model:
              kind: registration
              unet:
                dims: 2
                channels: [16, 32, 64, 128]
                strides: [2, 2, 2]
                norm: instance
                activation: leaky_relu
                classes: 3
            data:
              phantom: {size: [32, 32], count: 6}
              normalization: {kind: percentile}

            """
        let current = try TaskConfig(yaml: registrationYAML())
        guard case .registration(let r) = current else { return XCTFail() }
        let path = try checkpoint(
            current, embedding: old,
            metadata: [Checkpoint.registrationSectionKey: ConfigValue.map([("registration", r.registration.resolved)]).yaml()])
        var loaded: TaskConfig?
        let warning = try standardError { loaded = try TaskConfig(checkpoint: Checkpoint.read(path), path: path) }
        XCTAssertEqual(loaded, current)
        XCTAssertEqual(loaded?.run.yaml, current.run.yaml, "re-resolved, the old config says model.network")
        XCTAssertTrue(warning.hasPrefix("\(path) (embedded config): model.unet: warning: deprecated"), warning)
    }

    // MARK: The library's own names

    func testNetworkChoicesAreTheLibraryNames() throws {
        for norm in NormKind.Name.allCases {
            let c = try RunConfig(yaml: "model: {unet: {norm: \(norm.rawValue)}}\ndata: {phantom: {count: 4}}\n")
            XCTAssertEqual(c.model.unet.norm, norm)
        }
        for activation in UNetConfig.activations {
            let c = try RunConfig(yaml: "model: {unet: {activation: \(activation.rawValue)}}\ndata: {phantom: {count: 4}}\n")
            XCTAssertEqual(c.model.unet.activation, activation)
        }
        XCTAssertEqual(ActivationKind(.leaky_relu), .leakyRelu(0.01))
        let sigmoid = "model: {unet: {activation: sigmoid}}\ndata: {phantom: {count: 4}}\n"
        XCTAssertEqual(configError { try RunConfig(yaml: sigmoid) }, #"<config>: model.unet.activation: expected one of prelu, leaky_relu, relu, got "sigmoid""#)
        for kind in AlphaSchedule.Kind.allCases {
            let c = try RunConfig(yaml: "data: {phantom: {count: 4}}\nloss: {schedule: {kind: \(kind.rawValue)}}\n")
            XCTAssertEqual(c.loss.schedule.alphaSchedule.kind, kind)
        }
        for kind in LearningRateSchedule.Kind.allCases {
            let c = try RunConfig(yaml: "data: {phantom: {count: 4}}\ntraining: {lr_schedule: {kind: \(kind.rawValue)}}\n")
            XCTAssertEqual(c.training.lrSchedule.schedule(epochs: 10).kind, kind)
        }
    }
}
