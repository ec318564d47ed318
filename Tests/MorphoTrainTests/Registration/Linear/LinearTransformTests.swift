import Foundation
import MorphoIO
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

final class LinearTransformTests: XCTestCase {
    func transforms() -> [LinearTransform] {
        var rigid3 = LinearTransform(kind: .rigid, dimension: 3, center: SIMD3(3, -20, 10))
        rigid3.parameters = [0.1, -0.2, 0.3, 4, -5, 6]
        var rigid2 = LinearTransform(kind: .rigid, dimension: 2, center: SIMD3(1, 2, 0))
        rigid2.parameters = [0.4, -3, 2]
        var affine3 = rigid3.asAffine()
        affine3.parameters[0] *= 1.1
        affine3.parameters[5] += 0.05
        var affine2 = rigid2.asAffine()
        affine2.parameters[3] *= 0.9
        return [rigid3, rigid2, affine3, affine2]
    }

    func testParameterDerivativesMatchFiniteDifferences() {
        let x = SIMD3(30.0, -12.0, 47.0)
        for t in transforms() {
            let point = t.dimension == 2 ? SIMD3(x.x, x.y, 0) : x
            for (k, d) in t.parameterDerivatives().enumerated() {
                let analytic = d.matrix * (point - t.center) + d.translation
                var plus = t, minus = t
                plus.parameters[k] += 1e-6
                minus.parameters[k] -= 1e-6
                let numeric = (plus.apply(point) - minus.apply(point)) / 2e-6
                let error = ((analytic - numeric) * (analytic - numeric)).sum().squareRoot()
                XCTAssertLessThan(error, 1e-5 * max(1, (numeric * numeric).sum().squareRoot()), "\(t.kind) \(t.dimension)D parameter \(k)")
            }
        }
    }

    func testAsAffineKeepsTheMapAndTheITKFormKeepsItInLPS() {
        let x = SIMD3(30.0, -12.0, 47.0)
        for t in transforms() {
            let point = t.dimension == 2 ? SIMD3(x.x, x.y, 0) : x
            let y = t.apply(point)
            XCTAssertLessThan(simdDistance(t.asAffine().apply(point), y), 1e-9)
            XCTAssertLessThan(simdDistance(t.worldMap.apply(point), y), 1e-9)
            // ITK works on LPS points: flip x and y in and out.
            let flip = SIMD3(-1.0, -1.0, 1.0)
            XCTAssertLessThan(simdDistance(t.itk.apply(point * flip) * flip, y), 1e-9)
            XCTAssertEqual(t.itk.dimension, t.dimension)
        }
    }

    func testWrittenAffineReadsBackAsTheSameMapInBothFormats() throws {
        let folder = try temporaryFolder("linear-transform")
        for (n, t) in transforms().enumerated() {
            for ext in ["mat", "txt"] {
                let path = "\(folder)/t\(n).\(ext)"
                try ITKTransformFile.write(t.itk, to: path)
                let back = try ITKTransformFile.read(path)
                XCTAssertTrue(back.isApproximatelyEqual(to: t.itk, tolerance: 1e-9), "\(ext): \(back) vs \(t.itk)")
            }
        }
    }

    func testPolarDecompositionRecoversRotationAndScales() {
        let rotation = LinearTransform.rotation(0.2, -0.1, 0.3)
        let scales = Matrix3(entries: [1.1, 0, 0, 0, 0.9, 0, 0, 0, 1.05])
        var t = LinearTransform(kind: .affine, dimension: 3, center: SIMD3(1, 2, 3))
        t.parameters = (rotation * scales).entries + [4, 5, 6]
        let d = AffineDecomposition(t)
        for (a, b) in zip(d.rotationDegrees, [0.2, -0.1, 0.3].map { $0 * 180 / .pi }) { XCTAssertEqual(a, b, accuracy: 1e-9) }
        for (a, b) in zip(d.scales, [1.1, 0.9, 1.05]) { XCTAssertEqual(a, b, accuracy: 1e-9) }
        for s in d.shear { XCTAssertEqual(s, 0, accuracy: 1e-9) }
        XCTAssertEqual(d.translation, [4, 5, 6])
    }

    func simdDistance(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Double { ((a - b) * (a - b)).sum().squareRoot() }
}
