import Foundation
import MorphoIO
import MorphoKernels
import MorphoTensor
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// Loading, splitting and batching segmentation subjects, and the errors for bad input files.
final class SegmentationDatasetTests: XCTestCase {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = try temporaryFolder("train-data")
    }

    func config(_ extra: String = "", dims: Int = 2, patch: String = "") throws -> RunConfig {
        let size = dims == 2 ? "[40, 32]" : "[24, 24, 16]"
        return try RunConfig(yaml: """
            model:
              unet: {dims: \(dims), channels: [4, 8], classes: 3}
            data:
              phantom: {size: \(size), count: 5, seed: 3}
              \(patch)
            \(extra)
            """)
    }

    func testBatchIsAPureFunctionOfItsGeneratorState() throws {
        let c = try config("", dims: 3, patch: "patch: {size: [16, 16, 8]}\n  augmentation: {flip: [x, y], rotation: 10, scaling: 0.1, intensity: 0.1}")
        let data = try SegmentationDataset.load(c, distances: true)
        let sampler = PatchSampler(c, subjects: data.training)
        var r1 = SeedStream.generator(seed: 9, 4), r2 = SeedStream.generator(seed: 9, 4), r3 = SeedStream.generator(seed: 9, 5)
        let a = sampler.batch(from: data.training, count: 3, rng: &r1)
        let b = sampler.batch(from: data.training, count: 3, rng: &r2)
        let other = sampler.batch(from: data.training, count: 3, rng: &r3)
        XCTAssertEqual(a.images.shape, [3, 1, 8, 16, 16])
        XCTAssertEqual(a.labels.shape, [3, 1, 8, 16, 16])
        XCTAssertEqual(a.distances?.shape, [3, 3, 8, 16, 16])
        XCTAssertEqual(a.images.scalars, b.images.scalars)
        XCTAssertEqual(a.labels.scalars, b.labels.scalars)
        XCTAssertEqual(a.distances!.scalars, b.distances!.scalars)
        XCTAssertNotEqual(a.images.scalars, other.images.scalars)
    }

    func testTwoDimensionalBatchesHaveNoDepthAxis() throws {
        let c = try config()
        let data = try SegmentationDataset.load(c, distances: false)
        let sampler = PatchSampler(c, subjects: data.training)
        var rng = RandomGenerator(seed: 1)
        let batch = sampler.batch(from: data.training, count: 2, rng: &rng)
        // Whole 40×32 slices (x, y), padded to the multiple 2: [N, C, H, W] = [2, 1, 32, 40].
        XCTAssertEqual(batch.images.shape, [2, 1, 32, 40])
        XCTAssertNil(batch.distances)
    }

    func testValidationSplitBySubjectIsSeededAndDisjoint() throws {
        let c = try config("", dims: 2)
        let a = try SegmentationDataset.load(c, distances: false)
        let b = try SegmentationDataset.load(c, distances: false)
        XCTAssertEqual(a.validation.map(\.id), b.validation.map(\.id))
        XCTAssertEqual(a.validation.count, 1)  // round(0.2 · 5)
        XCTAssertEqual(a.training.count, 4)
        XCTAssertTrue(Set(a.training.map(\.id)).isDisjoint(with: a.validation.map(\.id)))
    }

    func testValidationSplitByPositionCutsEveryVolume() throws {
        let c = try config("", dims: 3, patch: "patch: {size: [8, 8, 4]}\n  validation: {by: position, fraction: 0.25, axis: z}")
        let data = try SegmentationDataset.load(c, distances: false)
        XCTAssertEqual(data.training.count, 5)
        XCTAssertEqual(data.validation.count, 5)
        // 16 slices along z: 12 for training, 4 held out (then padded to multiples of 2).
        XCTAssertEqual(data.training[0].shape[0], 12)
        XCTAssertEqual(data.validation[0].shape[0], 4)
    }

    func writePair(image: Volume, label: Volume) throws -> String {
        try NIfTI.write(image, to: "\(tempDir)/a_image.nii.gz")
        try NIfTI.write(label, to: "\(tempDir)/a_label.nii.gz", datatype: .uint8)
        let manifest = "\(tempDir)/manifest.csv"
        try "image,label\na_image.nii.gz,a_label.nii.gz\n".write(toFile: manifest, atomically: true, encoding: .utf8)
        return manifest
    }

    func manifestConfig(_ manifest: String) throws -> RunConfig {
        try RunConfig(yaml: "model: {unet: {channels: [4, 8]}}\ndata:\n  manifest: \(manifest)\n  validation: {fraction: 0}\n")
    }

    func testMismatchedGridsAreAnErrorNamingBothFiles() throws {
        let image = Volume(depth: 1, height: 8, width: 8, data: [Float](repeating: 1, count: 64))
        let label = Volume(depth: 1, height: 8, width: 6, data: [Float](repeating: 0, count: 48))
        let c = try manifestConfig(try writePair(image: image, label: label))
        XCTAssertThrowsError(try SegmentationDataset.load(c, distances: false)) { error in
            XCTAssertEqual(
                "\(error)",
                "\(tempDir)/a_image.nii.gz and \(tempDir)/a_label.nii.gz are not on the same voxel grid: sizes (x, y, z) [8, 8, 1] vs [6, 8, 1]")
        }
    }

    func testShiftedAffineIsAGridMismatch() throws {
        let image = Volume(depth: 1, height: 8, width: 8, data: [Float](repeating: 1, count: 64))
        let label = Volume(
            depth: 1, height: 8, width: 8, data: [Float](repeating: 0, count: 64),
            affine: Affine(matrix: [[1, 0, 0, 5], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
        let c = try manifestConfig(try writePair(image: image, label: label))
        XCTAssertThrowsError(try SegmentationDataset.load(c, distances: false)) { error in
            XCTAssertTrue("\(error)".hasSuffix("are not on the same voxel grid: voxel-to-world affines differ"), "\(error)")
        }
    }

    /// Subjects made in memory are checked too; the check names the subject's source.
    func testNaNVoxelsAreAnErrorNamingTheSource() throws {
        var data = [Float](repeating: 1, count: 64)
        data[5] = .nan
        data[9] = .infinity
        let image = Volume(depth: 1, height: 8, width: 8, data: data)
        let raw = RawSubject(
            id: "a", image: VoxelArray(image), labels: VoxelArray(data: [Float](repeating: 0, count: 64), channels: 1, shape: [1, 8, 8], spacing: [1, 1, 1]),
            sources: ["scan.nii.gz", "scan_label.nii.gz"], reference: image)
        let c = try manifestConfig("unused.csv")
        XCTAssertThrowsError(try SegmentationDataset.make([raw], config: c, distances: false)) { error in
            XCTAssertEqual("\(error)", "scan.nii.gz: 2 voxels are NaN or infinite (to replace them: --nan-as V, or data.nan_as in a training config)")
        }
    }

    /// NIfTI.read keeps NaN and infinite voxels (libnifti's loader used to turn them into 0
    /// without a word, and training ran on them); data.nan_as is the user's explicit choice.
    func testNaNVoxelsInAnImageFileAreRefusedUnlessDataNanAsIsSet() throws {
        var data = [Float](repeating: 1, count: 64)
        data[5] = .nan
        data[9] = -.infinity
        let manifest = try writePair(
            image: Volume(depth: 1, height: 8, width: 8, data: data),
            label: Volume(depth: 1, height: 8, width: 8, data: [Float](repeating: 0, count: 64)))
        XCTAssertThrowsError(try SegmentationDataset.load(manifestConfig(manifest), distances: false)) { error in
            XCTAssertEqual(
                "\(error)",
                "\(tempDir)/a_image.nii.gz: 2 voxels are NaN or infinite (to replace them: --nan-as V, or data.nan_as in a training config)")
        }
        let replacing = try RunConfig(
            yaml: "model: {unet: {channels: [4, 8]}}\ndata:\n  manifest: \(manifest)\n  validation: {fraction: 0}\n  nan_as: -3\n")
        XCTAssertEqual(replacing.data.nanAs, -3)
        let loaded = try SegmentationDataset.load(replacing, distances: false)
        XCTAssertEqual(loaded.training.count, 1)
        XCTAssertEqual(TaskConfig.segmentation(try manifestConfig(manifest)).settingNaNAs(-3).run, replacing)
    }

    func testLabelOutsideTheClassesIsAnError() throws {
        var labels = [Float](repeating: 0, count: 64)
        labels[3] = 4
        let image = Volume(depth: 1, height: 8, width: 8, data: [Float](repeating: 1, count: 64))
        let c = try manifestConfig(try writePair(image: image, label: Volume(depth: 1, height: 8, width: 8, data: labels)))
        XCTAssertThrowsError(try SegmentationDataset.load(c, distances: false)) { error in
            XCTAssertEqual("\(error)", "\(tempDir)/a_label.nii.gz: label value 4.0 is not a class index in 0..<2")
        }
    }
}

/// `Subject.signedDistances`: the per-class maps a subject keeps are `signedDistance` of each
/// class mask, per volume for 3D networks and per slice (in-plane spacing) for 2D ones.
final class SubjectSignedDistancesTests: XCTestCase {
    private let (d, h, w) = (3, 7, 6)
    private let classes = 3

    private func labels() -> VoxelArray {
        // Class regions of different shapes per slice, and class 2 absent from slice 0.
        let data = (0..<(d * h * w)).map { i -> Float in
            let z = i / (h * w), y = (i / w) % h, x = i % w
            if z > 0 && (x - 3) * (x - 3) + (y - 3) * (y - 3) <= z + 1 { return 2 }
            return y + x < 5 + z ? 1 : 0
        }
        return VoxelArray(data: data, channels: 1, shape: [d, h, w], spacing: [2, 0.75, 1.25])
    }

    func testVolumeMapsAreSignedDistanceOfEachClassMask() {
        let l = labels(), n = d * h * w
        let maps = Subject.signedDistances(l, classes: classes, sliceWise: false)
        XCTAssertEqual(maps.channels, classes)
        XCTAssertEqual(maps.shape, l.shape)
        for k in 0..<classes {
            let reference = signedDistance(mask: l.data.map { Int($0) == k }, shape: l.shape, spacing: l.spacing)
            XCTAssertEqual(Array(maps.data[(k * n)..<((k + 1) * n)]), reference, "class \(k)")
        }
    }

    func testSliceWiseMapsAreSignedDistanceOfEachSliceMaskWithInPlaneSpacing() {
        let l = labels(), n = d * h * w, slice = h * w
        let maps = Subject.signedDistances(l, classes: classes, sliceWise: true)
        for k in 0..<classes {
            for z in 0..<d {
                let mask = l.data[(z * slice)..<((z + 1) * slice)].map { Int($0) == k }
                let reference = signedDistance(mask: mask, shape: [h, w], spacing: [l.spacing[1], l.spacing[2]])
                let start = k * n + z * slice
                XCTAssertEqual(Array(maps.data[start..<(start + slice)]), reference, "class \(k) slice \(z)")
            }
        }
    }
}
