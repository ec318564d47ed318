import Foundation
import MorphoIO
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

final class PhantomTests: XCTestCase {
    func phantomConfig(dims: Int = 2, classes: Int = 3, seed: UInt64 = 7) -> PhantomConfig {
        PhantomConfig(
            dims: dims, size: dims == 2 ? [48, 40] : [24, 20, 16], count: 4, classes: classes, noise: 0.1, bias: 0.2,
            spacing: [1, 1.5, 2], seed: seed)
    }

    func testPhantomIsDeterministicForItsSeedAndIndex() {
        for dims in [2, 3] {
            let a = Phantom.make(phantomConfig(dims: dims), index: 2)
            let b = Phantom.make(phantomConfig(dims: dims), index: 2)
            XCTAssertEqual(a.image.data, b.image.data)
            XCTAssertEqual(a.label.data, b.label.data)
        }
    }

    func testPhantomsDifferBetweenIndicesAndSeeds() {
        let a = Phantom.make(phantomConfig(), index: 0)
        let b = Phantom.make(phantomConfig(), index: 1)
        let c = Phantom.make(phantomConfig(seed: 8), index: 0)
        XCTAssertNotEqual(a.label.data, b.label.data)
        XCTAssertNotEqual(a.label.data, c.label.data)
    }

    func testPhantomHasEveryClassAndTheRequestedGrid() {
        for dims in [2, 3] {
            for classes in [2, 3, 4] {
                let (image, label) = Phantom.make(phantomConfig(dims: dims, classes: classes), index: 0)
                let present = Set(label.data.map { Int($0) })
                XCTAssertEqual(present, Set(0..<classes), "dims \(dims) classes \(classes)")
                XCTAssertEqual(image.width, dims == 2 ? 48 : 24)
                XCTAssertEqual(image.height, dims == 2 ? 40 : 20)
                XCTAssertEqual(image.depth, dims == 2 ? 1 : 16)
                XCTAssertEqual(image.spacing.y, 1.5)
                XCTAssertTrue(image.sameGrid(as: label))
            }
        }
    }

    func testPhantomClassesAreSeparableByIntensityOnAverage() {
        let (image, label) = Phantom.make(phantomConfig(classes: 3), index: 1)
        var sums = [Double](repeating: 0, count: 3), counts = [Double](repeating: 0, count: 3)
        for (v, l) in zip(image.data, label.data) {
            sums[Int(l)] += Double(v)
            counts[Int(l)] += 1
        }
        let means = (0..<3).map { sums[$0] / counts[$0] }
        XCTAssertLessThan(means[0], means[1] - 0.4)
        XCTAssertLessThan(means[1], means[2] - 0.4)
    }

    func testPhantomDatasetIsWrittenAsReadableNIfTIWithAManifest() throws {
        let dir = try temporaryFolder("phantom")
        let config = phantomConfig(dims: 3)
        let manifest = try Phantom.writeDataset(config, to: dir)
        let cases = try CaseList.manifest(manifest, modalities: ["image"])
        XCTAssertEqual(cases.count, 4)
        let image = try NIfTI.read(cases[3].images[0])
        let label = try NIfTI.read(cases[3].label!)
        let expected = Phantom.make(config, index: 3)
        XCTAssertEqual(image.data, expected.image.data)
        XCTAssertEqual(label.data, expected.label.data)
        XCTAssertEqual(try NIfTI.readHeader(cases[3].label!).datatype, .uint8)
        XCTAssertTrue(image.sameGrid(as: expected.image))
    }
}
