import XCTest
@testable import MorphoTrain

/// Every size and count a config sets has an upper bound, and going over it is a config error
/// naming the key and the bound, before anything is allocated (these used to abort in the
/// allocator, trap on an integer conversion, or run without end).
final class ConfigBoundsTests: XCTestCase {
    private func error(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try RunConfig(yaml: yaml)
            XCTFail("accepted:\n\(yaml)", file: file, line: line)
            return ""
        } catch let e as MorphoTrainError {
            XCTAssertFalse(e.description.contains("\n"), e.description, file: file, line: line)
            return e.description
        } catch {
            XCTFail("not a config error: \(error)", file: file, line: line)
            return ""
        }
    }

    func testPhantomSizeAboveTheBoundNamesTheKeyAndTheBound() {
        XCTAssertEqual(
            error("data:\n  phantom: {size: [100000, 100000]}\n"),
            "<config>: data.phantom.size: 100000 voxels along one axis, at most 1024")
        XCTAssertEqual(
            error("model:\n  unet: {dims: 3}\ndata:\n  phantom: {size: [1024, 1024, 1024]}\n"),
            "<config>: data.phantom.size: [1024, 1024, 1024] is 1073741824 voxels, at most 16777216 (256³)")
    }

    func testPhantomCountAboveTheBoundNamesTheKeyAndTheBound() {
        XCTAssertEqual(
            error("data:\n  phantom: {size: [64, 64], count: 1000000000}\n"),
            "<config>: data.phantom.count: must be at most 100000, got 1000000000")
        XCTAssertEqual(
            error("data:\n  phantom: {size: [1024, 1024], count: 1000}\n"),
            "<config>: data.phantom.count: 1000 phantoms of 1048576 voxels are 1048576000 voxels, at most 268435456")
    }

    /// 300 classes used to trap converting class 256 to UInt8 while drawing the phantom.
    func testMoreThan255PhantomClassesIsAConfigError() {
        XCTAssertEqual(
            error("model:\n  unet: {classes: 300}\ndata:\n  phantom: {size: [32, 32]}\n"),
            "<config>: data.phantom.classes: must be at most 255 (phantom labels are uint8), got 300 from model classes")
        XCTAssertEqual(
            error("model:\n  unet: {classes: 100000}\ndata:\n  phantom: {size: [32, 32]}\n"),
            "<config>: model.unet.classes: must be at most 1024, got 100000")
    }

    func testPhantomWith255ClassesIsDrawnWithoutTrapping() throws {
        let config = try RunConfig(yaml: "model:\n  unet: {classes: 255}\ndata:\n  phantom: {size: [16, 16], count: 2}\n")
        guard case .phantom(let p) = config.data.source else { return XCTFail("not a phantom") }
        let (_, label) = Phantom.make(p, index: 0)
        XCTAssertLessThan(label.data.max()!, 255)
    }

    func testPatchSizeAboveTheBoundNamesTheKeyAndTheBound() {
        XCTAssertEqual(
            error("data:\n  phantom: {size: [32, 32]}\n  patch: {size: [4096, 4096]}\n"),
            "<config>: data.patch.size: 4096 voxels along one axis, at most 1024")
    }

    func testTrainingCountsAboveTheirBoundsNameTheKeyAndTheBound() {
        let data = "data:\n  phantom: {size: [32, 32]}\n"
        XCTAssertEqual(
            error(data + "training: {batch_size: 400000}\n"), "<config>: training.batch_size: must be at most 1024, got 400000")
        XCTAssertEqual(
            error(data + "training: {steps_per_epoch: 9000000000}\n"),
            "<config>: training.steps_per_epoch: must be at most 1000000, got 9000000000")
        XCTAssertEqual(error(data + "training: {epochs: 10000000}\n"), "<config>: training.epochs: must be at most 1000000, got 10000000")
        XCTAssertEqual(error(data + "  threads: 100000\n"), "<config>: data.threads: must be at most 256, got 100000")
        XCTAssertEqual(
            error("model:\n  unet: {dims: 3}\ndata:\n  phantom: {size: [32, 32, 32]}\n  patch: {size: [256, 256, 256]}\ntraining: {batch_size: 128}\n"),
            "<config>: training.batch_size: 128 patches of 16777216 voxels exceed 1073741824 voxels per batch")
        XCTAssertEqual(
            error(data + "model:\n  unet: {channels: [8, 100000]}\n"),
            "<config>: model.unet.channels: at most 10 levels of at most 4096 channels")
    }

    func testSizesAtTheBoundsAreAccepted() throws {
        _ = try RunConfig(yaml: """
            model:
              unet: {classes: 255}
            data:
              phantom: {size: [1024, 256], count: 1000}
              threads: 256
            training: {batch_size: 1024, steps_per_epoch: 1000000, epochs: 1000000}
            """)
    }
}
