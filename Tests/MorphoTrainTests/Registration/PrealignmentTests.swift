import Foundation
import MorphoIO
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// `registration.prealign`: real subject pairs linearly aligned once before training, the maps
/// cached in the run folder.
final class PrealignmentTests: XCTestCase {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("reg-prealign")
    }

    /// The rigid map the second subject's content is moved by: 8° in-plane, (4, −3) mm, about
    /// the image centre.
    static func truth(centre: SIMD3<Double>) -> LinearTransform {
        var t = LinearTransform(kind: .rigid, dimension: 2, center: centre)
        t.parameters = [8 * .pi / 180, 4, -3]
        return t
    }

    /// Three 2D 64×64 subjects written as files with labels, and the manifest naming them:
    /// `a` a phantom, `b` the same phantom whose content is moved by `truth` (a second scan of
    /// the same head placed differently), `c` another phantom.
    func writeSubjects() throws -> (manifest: String, truth: LinearTransform) {
        let p = PhantomConfig(dims: 2, size: [64, 64], count: 2, classes: 3, noise: 0, bias: 0, spacing: [1, 1, 1], seed: 7)
        let (a, aLabels) = Phantom.make(p, index: 0)
        let (c, cLabels) = Phantom.make(p, index: 1)
        let centre = a.affine.apply(SIMD3(31.5, 31.5, 0))
        let truth = Self.truth(centre: centre)
        func moved(_ v: Volume, _ interpolation: SamplingMode) -> Volume {
            var replaced = v
            replaced.affine = truth.worldMap * v.affine
            return WorldResampling.resample(replaced, onto: v, interpolation: interpolation).volume
        }
        var lines = ["id,image,label"]
        for (id, image, labels) in [("a", a, aLabels), ("b", moved(a, .linear), moved(aLabels, .nearest)), ("c", c, cLabels)] {
            try NIfTI.write(image, to: "\(tempDir)/\(id).nii.gz")
            try NIfTI.write(labels, to: "\(tempDir)/\(id)_seg.nii.gz", datatype: .uint8)
            lines.append("\(id),\(id).nii.gz,\(id)_seg.nii.gz")
        }
        let manifest = tempDir + "/subjects.csv"
        try (lines.joined(separator: "\n") + "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        return (manifest, truth)
    }

    func config(manifest: String, prealign: String, epochs: Int = 1) throws -> RegistrationRunConfig {
        try RegistrationRunConfig(yaml: """
            name: prealign
            model: {kind: registration, network: {dims: 2, classes: 3}}
            data: {manifest: \(manifest), normalization: {kind: percentile}, validation: {fraction: 0}, threads: 1}
            registration:
              pairs: random
              prealign: \(prealign)
              validation_pairs: 2
              network: {encoder: [8, 16, 16], decoder: [16, 16, 16, 8]}
              loss: {similarity: {kind: mi}}
            training: {epochs: \(epochs), steps_per_epoch: 3, batch_size: 2, optimizer: {kind: adam, lr: 0.001}, validate_every: 1}
            """)
    }

    /// Mean foreground Dice between the labels of the prepared subjects `i` and `j`.
    func dice(_ d: RegistrationDataset, _ i: Int, _ j: Int) throws -> Double {
        let a = try XCTUnwrap(d.images[i].labels), b = try XCTUnwrap(d.images[j].labels)
        let shape = [1, 1] + Array(a.shape.dropFirst())
        return RegistrationMetrics.meanDice(RegistrationMetrics.dicePerLabel(
            Tensor(shape: shape, data: a.data), Tensor(shape: shape, data: b.data), labels: [1, 2]))
    }

    func testPrealignmentUndoesAKnownMisalignmentOfASubjectBeforeTraining() throws {
        let (manifest, truth) = try writeSubjects()
        let unaligned = try RegistrationDataset.load(config(manifest: manifest, prealign: "none"))
        XCTAssertTrue(unaligned.prealignments.isEmpty)
        var lines: [String] = []
        let aligned = try RegistrationDataset.load(config(manifest: manifest, prealign: "rigid"), log: { lines.append($0) })
        XCTAssertEqual(aligned.images.map(\.id), ["a", "b", "c"])
        // One map per subject but the reference (the first), each logged on one line.
        XCTAssertEqual(aligned.prealignments.map(\.moving), ["b", "c"])
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[0].hasPrefix("prealign b onto a (rigid, mi loss "), lines[0])
        XCTAssertTrue(lines[0].contains("rotation (°, about x, y, z): "), lines[0])
        let found = aligned.prealignments[0].transform
        let angle = found.parameters[0] * 180 / .pi
        let shift = found.apply(truth.center) - truth.apply(truth.center)
        let error = (shift * shift).sum().squareRoot()
        let before = try dice(unaligned, 0, 1), after = try dice(aligned, 0, 1)
        print(String(format: "prealign rigid 2D phantom: angle %.3f° (truth 8), centre error %.3f mm; Dice a/b %.3f → %.3f",
                     angle, error, before, after))
        XCTAssertEqual(angle, 8, accuracy: 0.5)
        XCTAssertLessThan(error, 0.5)
        XCTAssertLessThan(before, 0.9)
        XCTAssertGreaterThan(after, 0.95)
    }

    func testSecondLoadReadsTheCachedMapsAndAChangedSubjectIsRecomputed() throws {
        let (manifest, _) = try writeSubjects()
        let cache = tempDir + "/run/prealign"
        let config = try config(manifest: manifest, prealign: "affine")
        let first = try RegistrationDataset.load(config, cacheFolder: cache)
        XCTAssertEqual(first.prealignmentsComputed, 2)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache).filter { $0.hasSuffix(".json") }.count, 2)
        var lines: [String] = []
        let second = try RegistrationDataset.load(config, cacheFolder: cache, log: { lines.append($0) })
        XCTAssertEqual(second.prealignmentsComputed, 0)
        XCTAssertEqual(second.prealignments, first.prealignments)
        XCTAssertTrue(lines.allSatisfy { $0.contains("cached") }, "\(lines)")
        XCTAssertEqual(second.images.map(\.image.data), first.images.map(\.image.data))
        // A changed file (one voxel of c) is a new key: c is registered again, b is not.
        var c = try NIfTI.read(tempDir + "/c.nii.gz")
        c.data[100] += 0.5
        try NIfTI.write(c, to: tempDir + "/c.nii.gz")
        let third = try RegistrationDataset.load(config, cacheFolder: cache)
        XCTAssertEqual(third.prealignmentsComputed, 1)
        XCTAssertEqual(third.prealignments[0], first.prealignments[0])
        // Other settings are another key too.
        XCTAssertEqual(try RegistrationDataset.load(self.config(manifest: manifest, prealign: "rigid"), cacheFolder: cache).prealignmentsComputed, 2)
    }

    /// A run with `prealign` end to end: trains, stops, resumes; the resumed run logs the maps
    /// as cached and computes none.
    func testResumedRunDoesNotRecomputeThePrealignment() throws {
        let (manifest, _) = try writeSubjects()
        let config = try config(manifest: manifest, prealign: "affine", epochs: 2)
        let output = tempDir + "/run"
        final class Lines { var all: [String] = [] }
        let first = Lines(), second = Lines()
        let summary = try TrainingRun.run(
            .registration(config), output: output, stopAfterEpoch: 1, progress: ProgressReporter(style: .lines, write: { first.all.append($0) }))
        XCTAssertEqual(summary.epochs, 1)
        XCTAssertEqual(first.all.filter { $0.hasPrefix("prealign ") && !$0.contains("cached") }.count, 2, first.all.joined())
        let resumed = try TrainingRun.run(
            .registration(config), output: output, resume: output + "/last.safetensors",
            progress: ProgressReporter(style: .lines, write: { second.all.append($0) }))
        XCTAssertEqual(resumed.epochs, 2)
        let prealign = second.all.filter { $0.hasPrefix("prealign ") }
        XCTAssertEqual(prealign.count, 2, second.all.joined())
        XCTAssertTrue(prealign.allSatisfy { $0.contains("cached") }, prealign.joined())
        XCTAssertTrue(try XCTUnwrap(resumed.history.last?.loss).isFinite)
        XCTAssertEqual(try RegistrationRunConfig.load(output + "/registration.yaml").registration.prealign, .affine)
    }

    func testPrealignIsRefusedForSyntheticPairs() {
        // The tiny config's `loss` line sits in `registration:`, so it can carry the key.
        XCTAssertThrowsError(try RegistrationRunConfig(yaml: TinyConfigs.registration(
            epochs: 1, steps: 1, threads: 1, optimizer: "{kind: adam}", validateEvery: 1,
            loss: "prealign: affine"))) { error in
            XCTAssertTrue("\(error)".contains("registration.prealign: aligns real subject pairs"), "\(error)")
        }
    }

    /// Training and `register --model` align with the same linear settings (the defaults
    /// `register` starts from, with the stages of the matching `--transform`), so the map a
    /// network's training pair was aligned with is the map `register` finds for that pair.
    func testTrainingTimeMapIsTheMapRegisterFindsForTheSamePair() throws {
        XCTAssertNil(PrealignKind.none.settings)
        var expected = LinearRegistration.Settings()
        expected.stages = RegistrationTransform.affineDeformable.linearStages
        XCTAssertEqual(PrealignKind.affine.settings, expected)
        let (manifest, _) = try writeSubjects()
        let dataset = try RegistrationDataset.load(config(manifest: manifest, prealign: "affine"))
        let inputs = try StagedRegistration.Inputs.load(RegistrationPairFiles(fixed: tempDir + "/a.nii.gz", moving: tempDir + "/b.nii.gz"))
        let register = try StagedRegistration(transform: .affine, method: .optimize(InstanceOptimization.Settings())).run(inputs)
        XCTAssertEqual(dataset.prealignments[0].transform, try XCTUnwrap(register.linear))
    }

    /// `register --model` without `--transform` aligns a pair the way the network's training pairs
    /// were: rigid only for `prealign: rigid`, rigid then affine otherwise (and for `--optimize`).
    func testRegisterWithoutTransformFollowsTheNetworksPrealignment() throws {
        let (manifest, _) = try writeSubjects()
        func model(_ prealign: String) throws -> RegistrationModel {
            let config = try config(manifest: manifest, prealign: prealign)
            return RegistrationModel(config: config, network: makeDisplacementNet(config), path: "<\(prealign)>")
        }
        XCTAssertEqual(RegistrationTransform.standard(for: .model(try model("rigid"))), .rigidDeformable)
        XCTAssertEqual(RegistrationTransform.rigidDeformable.linearStages, PrealignKind.rigid.settings?.stages)
        XCTAssertEqual(RegistrationTransform.standard(for: .model(try model("affine"))), .affineDeformable)
        XCTAssertEqual(RegistrationTransform.standard(for: .model(try model("none"))), .affineDeformable)
        XCTAssertEqual(RegistrationTransform.standard(for: .optimize(InstanceOptimization.Settings())), .affineDeformable)
    }
}
