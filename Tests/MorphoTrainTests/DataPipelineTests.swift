import Foundation
import MorphoIO
import MorphoKernels
import MorphoTensor
import XCTest
@testable import MorphoTrain

final class DataPipelineTests: XCTestCase {
    var tempDir = ""

    override func setUpWithError() throws {
        tempDir = NSTemporaryDirectory() + "train-data-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tempDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: tempDir)
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

    /// A subject whose only foreground is a 3×3 square in a 64×64 slice.
    func smallForegroundSubject() -> Subject {
        var labels = [Float](repeating: 0, count: 64 * 64)
        for y in 30..<33 { for x in 40..<43 { labels[y * 64 + x] = 1 } }
        let image = VoxelArray(data: labels, channels: 1, shape: [1, 64, 64], spacing: [1, 1, 1])
        let pre = Preprocessor(
            normalization: try! RunConfig(yaml: "data: {phantom: {}}").data.normalization, targetSpacing: nil, dims: 2,
            sliceAxis: .z, multiple: 1, minimumSize: [1, 1, 1])
        return Subject(
            id: "square", prepared: pre.placeImage(image), labels: VoxelArray(data: labels, channels: 1, shape: [1, 64, 64], spacing: [1, 1, 1]),
            classes: 2, distances: true, sliceWise: true)
    }

    func testPatchSamplerHonoursTheForegroundFraction() throws {
        let subject = smallForegroundSubject()
        let aug = try RunConfig(yaml: "data: {phantom: {}}").data.augmentation
        func fractionWithForeground(_ f: Double) -> Double {
            let sampler = PatchSampler(size: [1, 16, 16], foregroundFraction: f, augmentation: aug, order: [0, 1, 2], dims: 2)
            var rng = RandomGenerator(seed: 11)
            var hits = 0
            let n = 2000
            for _ in 0..<n {
                let (_, labels, _) = sampler.sample(subject, rng: &rng)
                if labels.data.contains(where: { $0 > 0 }) { hits += 1 }
            }
            return Double(hits) / Double(n)
        }
        XCTAssertEqual(fractionWithForeground(1), 1)
        // Uniform origins: a 16×16 patch touches the square for 18×18 of the 49×49 origins (13.5 %).
        let uniform = fractionWithForeground(0)
        let expectedUniform: Double = 324.0 / 2401.0  // (18 · 18) / (49 · 49)
        XCTAssertEqual(uniform, expectedUniform, accuracy: 0.03)
        let half = fractionWithForeground(0.5)
        XCTAssertEqual(half, 0.5 + 0.5 * uniform, accuracy: 0.04)
    }

    func testPatchDistancesAreTheVolumeDistancesCroppedWithTheLabels() throws {
        let subject = smallForegroundSubject()
        let aug = try RunConfig(yaml: "data: {phantom: {}}").data.augmentation
        let sampler = PatchSampler(size: [1, 16, 16], foregroundFraction: 1, augmentation: aug, order: [0, 1, 2], dims: 2)
        var rng = RandomGenerator(seed: 5)
        let o = sampler.origin(in: subject, rng: &rng)
        var again = RandomGenerator(seed: 5)
        let (_, labels, distances) = sampler.sample(subject, rng: &again)
        let d = try XCTUnwrap(distances)
        XCTAssertEqual(d.channels, 2)
        // The same crop of the volume maps.
        let expected = subject.distances!.cropped(origin: o, size: [1, 16, 16], fill: [0, 0])
        XCTAssertEqual(d.data, expected.data)
        // Class-1 map: ≤ 0 on the label, > 0 off it.
        for i in 0..<256 {
            XCTAssertEqual(labels.data[i] == 1, d.data[256 + i] <= 0)
        }
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

    // MARK: Bad input

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

    func testNaNVoxelsAreAnErrorNamingTheSource() throws {
        // libnifti's reader replaces NaN/Inf in float files by 0 (nifti_read_buffer), so NaN
        // reaches the pipeline only from memory; the check there names the subject's source.
        var data = [Float](repeating: 1, count: 64)
        data[5] = .nan
        data[9] = .infinity
        let image = Volume(depth: 1, height: 8, width: 8, data: data)
        let raw = RawSubject(
            id: "a", image: VoxelArray(image), labels: VoxelArray(data: [Float](repeating: 0, count: 64), channels: 1, shape: [1, 8, 8], spacing: [1, 1, 1]),
            sources: ["scan.nii.gz", "scan_label.nii.gz"], reference: image)
        let c = try manifestConfig("unused.csv")
        XCTAssertThrowsError(try SegmentationDataset.make([raw], config: c, distances: false)) { error in
            XCTAssertEqual("\(error)", "scan.nii.gz: 2 voxels are NaN or infinite")
        }
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

    func testMissingFileInAManifestIsNamed() throws {
        let manifest = "\(tempDir)/manifest.csv"
        try "image,label\nnope.nii.gz,nope_label.nii.gz\n".write(toFile: manifest, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CaseList.manifest(manifest, modalities: ["image"])) { error in
            XCTAssertEqual("\(error)", "\(tempDir)/nope.nii.gz: no such image file")
        }
        XCTAssertThrowsError(try CaseList.manifest(manifest, modalities: ["t1"])) { error in
            XCTAssertEqual("\(error)", "\(manifest): no column \"t1\" (columns: image, label)")
        }
        XCTAssertThrowsError(try CaseList.manifest("\(tempDir)/missing.csv", modalities: ["image"])) { error in
            XCTAssertEqual("\(error)", "\(tempDir)/missing.csv: no such manifest file")
        }
    }

    func testGlobsPairFilesByTheirWildcardText() throws {
        for id in ["a", "b"] {
            for suffix in ["t1", "t2", "seg"] {
                FileManager.default.createFile(atPath: "\(tempDir)/\(id)_\(suffix).nii.gz", contents: Data([0]))
            }
        }
        let cases = try CaseList.globs(images: ["\(tempDir)/*_t1.nii.gz", "\(tempDir)/*_t2.nii.gz"], labels: "\(tempDir)/*_seg.nii.gz")
        XCTAssertEqual(cases.map(\.id), ["a", "b"])
        XCTAssertEqual(cases[1].images, ["\(tempDir)/b_t1.nii.gz", "\(tempDir)/b_t2.nii.gz"])
        XCTAssertEqual(cases[1].label, "\(tempDir)/b_seg.nii.gz")
        try FileManager.default.removeItem(atPath: "\(tempDir)/b_t2.nii.gz")
        XCTAssertThrowsError(try CaseList.globs(images: ["\(tempDir)/*_t1.nii.gz", "\(tempDir)/*_t2.nii.gz"], labels: "\(tempDir)/*_seg.nii.gz")) { error in
            XCTAssertEqual("\(error)", "\(tempDir)/*_t2.nii.gz: no image for label \(tempDir)/b_seg.nii.gz")
        }
    }

    // MARK: Array operations

    func testPermutationAndItsInverseRestoreTheArray() {
        var rng = RandomGenerator(seed: 3)
        let a = VoxelArray(data: (0..<(2 * 3 * 4 * 5)).map { _ in rng.uniform() }, channels: 2, shape: [3, 4, 5], spacing: [1, 2, 3])
        for order in [[1, 0, 2], [2, 0, 1], [0, 2, 1]] {
            let p = a.permuted(order)
            XCTAssertEqual(p.shape, order.map { a.shape[$0] })
            XCTAssertEqual(p.spacing, order.map { a.spacing[$0] })
            XCTAssertEqual(p.permuted(VoxelArray.inversePermutation(order)), a)
        }
        // Spot check: [1, 0, 2] puts H first: p[c, y, z, x] == a[c, z, y, x].
        let p = a.permuted([1, 0, 2])
        let inP: Int = ((1 * 4 + 2) * 3 + 1) * 5 + 4
        let inA: Int = ((1 * 3 + 1) * 4 + 2) * 5 + 4
        XCTAssertEqual(p.data[inP], a.data[inA])
    }

    func testFlippingTwiceIsTheIdentity() {
        var rng = RandomGenerator(seed: 4)
        let a = VoxelArray(data: (0..<60).map { _ in rng.uniform() }, channels: 1, shape: [3, 4, 5], spacing: [1, 1, 1])
        for axis in 0..<3 {
            var b = a
            b.flip(axis: axis)
            XCTAssertNotEqual(a, b)
            let mirrored: [Int] = [40, 15, 4]
            XCTAssertEqual(b.data[0], a.data[mirrored[axis]])
            b.flip(axis: axis)
            XCTAssertEqual(a, b)
        }
    }

    func testPreparedImageIsRestoredToTheFileGrid() throws {
        var rng = RandomGenerator(seed: 8)
        let raw = VoxelArray(data: (0..<(5 * 6 * 7)).map { _ in Float(rng.index(3)) }, channels: 1, shape: [5, 6, 7], spacing: [2, 1, 1])
        let norm = try RunConfig(yaml: "data: {phantom: {}}").data.normalization
        for axis in SpatialAxis.allCases {
            let pre = Preprocessor(normalization: norm, targetSpacing: nil, dims: 2, sliceAxis: axis, multiple: 4, minimumSize: [1, 1, 1])
            let labels = pre.prepareLabels(raw)
            let prepared = pre.placeImage(raw)
            XCTAssertTrue(labels.shape[1] % 4 == 0 && labels.shape[2] % 4 == 0)
            XCTAssertEqual(prepared.restored(labels, linear: false), raw, "slice axis \(axis)")
        }
        // Resampling to 1 mm and back with nearest neighbour keeps labels on a 2:1 grid.
        let pre = Preprocessor(normalization: norm, targetSpacing: [1, 1, 1], dims: 3, sliceAxis: .z, multiple: 1, minimumSize: [1, 1, 1])
        let prepared = pre.placeImage(raw)
        XCTAssertEqual(prepared.array.shape, [10, 6, 7])
        XCTAssertEqual(prepared.restored(pre.prepareLabels(raw), linear: false).data, raw.data)
    }

    func testLinearResamplingKeepsALinearRamp() {
        // A ramp along W sampled at half the spacing is still a ramp (inside the border voxels).
        let raw = VoxelArray(data: (0..<8).map { Float($0) }, channels: 1, shape: [1, 1, 8], spacing: [1, 1, 2])
        let fine = raw.resampled(toSpacing: [1, 1, 1], linear: true)
        XCTAssertEqual(fine.shape, [1, 1, 16])
        for i in 1..<15 { XCTAssertEqual(fine.data[i], (Float(i) + 0.5) / 2 - 0.5, accuracy: 1e-6) }
    }

    func testNormalizationZScoreAndPercentile() throws {
        var a = VoxelArray(data: [1, 2, 3, 4, 0, 0, 0, 100], channels: 2, shape: [1, 1, 4], spacing: [1, 1, 1])
        let z = try RunConfig(yaml: "data: {phantom: {}}").data.normalization
        z.apply(to: &a)
        let std = (1.25 as Double).squareRoot()
        XCTAssertEqual(a.data[0], Float((1 - 2.5) / std), accuracy: 1e-6)
        XCTAssertEqual(a.data[7], Float(75 / (1875 as Double).squareRoot()), accuracy: 1e-5)
        var b = VoxelArray(data: (0...100).map { Float($0) }, channels: 1, shape: [1, 1, 101], spacing: [1, 1, 1])
        let p = try RunConfig(yaml: "data:\n  phantom: {}\n  normalization: {kind: percentile, lower: 10, upper: 90}\n").data.normalization
        p.apply(to: &b)
        XCTAssertEqual(b.data[0], 0)
        XCTAssertEqual(b.data[50], 0.5, accuracy: 1e-6)
        XCTAssertEqual(b.data[100], 1)
    }

    // MARK: Prefetching

    func testPrefetcherDeliversItemsInOrderForAnyThreadCount() {
        for threads in [1, 3] {
            let p = Prefetcher(indices: 5..<45, threads: threads, capacity: 4) { i -> [Int] in
                var rng = SeedStream.generator(seed: 1, i)
                return (0..<100).map { _ in rng.index(1000) } + [i]
            }
            var seen: [Int] = []
            while let item = p.next() { seen.append(item.last!) }
            XCTAssertEqual(seen, Array(5..<45))
        }
    }

    func testDroppingAPrefetcherEarlyStopsItsWorkers() {
        var p: Prefetcher<Int>? = Prefetcher(indices: 0..<1000, threads: 2, capacity: 2) { $0 }
        XCTAssertEqual(p?.next(), 0)
        p = nil  // must not hang or crash
        XCTAssertNil(p)
    }
}
