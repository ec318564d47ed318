import XCTest
import MorphoIO
import MorphoTensor
@testable import MorphoTrain

/// The T2-like remap of a T1 image.
final class SyntheticContrastTests: XCTestCase {
    /// 1000 voxels: background 0, CSF 29.2 (0.4 of GM), GM 73, WM 96 (labels 1, 2), fat 100.
    let tissues: [(value: Float, label: Float, count: Int)] = [(0, 0, 300), (29.2, 0, 200), (73, 1, 250), (96, 2, 200), (100, 0, 50)]

    func testT2RemapMakesCSFBrightestAndWhiteMatterDarkerThanGreyMatter() throws {
        let image = Tensor(shape: [1, 1, 10, 100], data: tissues.flatMap { Array(repeating: $0.value, count: $0.count) })
        let labels = Tensor(shape: [1, 1, 10, 100], data: tissues.flatMap { Array(repeating: $0.label, count: $0.count) })
        let t2 = try SyntheticContrast.t2.apply(to: image, labels: labels).scalars
        // Percentiles 0.5 / 99.5 are 0 and 100, so t = value / 100 and the knots sit on the tissues:
        // T2(0) = 0, T2(t_CSF) = 1, T2(t_GM) = 0.55, T2(t_WM) = 0.25, T2(1) = 0.2.
        var offset = 0
        for ((_, _, count), expected) in zip(tissues, [Float(0), 1, 0.55, 0.25, 0.2]) {
            XCTAssertEqual(t2[offset], expected, accuracy: 1e-4)
            offset += count
        }
        XCTAssertEqual(try SyntheticContrast.t1.apply(to: image, labels: nil).scalars, image.scalars)
    }

    func testT2NeedsGreyAndWhiteMatterLabels() {
        let image = Tensor(shape: [1, 1, 4, 4], data: (0..<16).map(Float.init))
        XCTAssertThrowsError(try SyntheticContrast.t2.apply(to: image, labels: nil)) { error in
            XCTAssertTrue("\(error)".contains("contrast"), "\(error)")
        }
        let onlyGM = Tensor(shape: [1, 1, 4, 4], data: (0..<16).map { $0 < 8 ? 1 : 0 })
        XCTAssertThrowsError(try SyntheticContrast.t2.apply(to: image, labels: onlyGM)) { error in
            XCTAssertTrue("\(error)".contains("label 2"), "\(error)")
        }
    }
}
