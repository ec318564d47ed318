import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// ITK affine transforms: the model `y = A (x − c) + c + t` on LPS points, its RAS form, and the
/// text and `.mat` files, checked on cases small enough to compute by hand.
final class ITKAffineTransformTests: XCTestCase {
    /// A 90° rotation about z (x → y, y → −x) about the centre (10, 0, 0), translated by (0, 0, 5).
    let rotation = ITKAffineTransform(
        dimension: 3, matrix: [0, -1, 0, 1, 0, 0, 0, 0, 1], translation: [0, 0, 5], center: [10, 0, 0])

    func testRotationAboutACentreMovesPointsAroundThatCentre() {
        // The centre goes to itself plus t.
        XCTAssertEqual(rotation.apply(SIMD3(10, 0, 0)), SIMD3(10, 0, 5))
        // One mm along x from the centre turns to one mm along y from it.
        XCTAssertEqual(rotation.apply(SIMD3(11, 0, 0)), SIMD3(10, 1, 5))
        // offset = t + c − A c = (0, 0, 5) + (10, 0, 0) − (0, 10, 0).
        XCTAssertEqual(rotation.offset, [10, -10, 5])
    }

    func testRASMatrixIsTheLPSMapWithXAndYNegated() {
        let p = SIMD3<Double>(3, -7, 2)
        let lpsImage = rotation.apply(SIMD3(-p.x, -p.y, p.z))
        let rasImage = rotation.rasMatrix.apply(p)
        XCTAssertEqual(rasImage.x, -lpsImage.x, accuracy: 1e-12)
        XCTAssertEqual(rasImage.y, -lpsImage.y, accuracy: 1e-12)
        XCTAssertEqual(rasImage.z, lpsImage.z, accuracy: 1e-12)
        // A pure LPS translation (1, 2, 3) is the RAS translation (−1, −2, 3).
        let shift = ITKAffineTransform(dimension: 3, matrix: [1, 0, 0, 0, 1, 0, 0, 0, 1], translation: [1, 2, 3])
        XCTAssertEqual(shift.rasMatrix.matrix.map { $0[3] }, [-1, -2, 3, 1])
        // And back, about the original centre.
        let back = ITKAffineTransform(ras: rotation.rasMatrix, center: rotation.center)
        XCTAssertEqual(back.center, rotation.center)
        for (a, b) in zip(back.parameters, rotation.parameters) { XCTAssertEqual(a, b, accuracy: 1e-12) }
    }

    func testInverseUndoesTheTransformAndCompositionChainsPoints() {
        let p = SIMD3<Double>(4, -2, 9)
        let there = rotation.apply(p)
        let back = rotation.inverse.apply(there)
        for axis in 0..<3 { XCTAssertEqual(back[axis], p[axis], accuracy: 1e-12) }
        let shift = ITKAffineTransform(dimension: 3, matrix: [2, 0, 0, 0, 1, 0, 0, 0, 1], translation: [1, 0, 0])
        let chained = shift.after(rotation).apply(p)
        let stepwise = shift.apply(rotation.apply(p))
        for axis in 0..<3 { XCTAssertEqual(chained[axis], stepwise[axis], accuracy: 1e-12) }
        XCTAssertTrue(rotation.after(rotation.inverse).isApproximatelyEqual(to: .identity(dimension: 3), tolerance: 1e-12))
    }

    func testTextAndMatlabFormsParseToTheSameTransform() throws {
        let text = """
            #Insight Transform File V1.0
            #Transform 0
            Transform: AffineTransform_double_3_3
            Parameters: 0 -1 0 1 0 0 0 0 1 0 0 5
            FixedParameters: 10 0 0
            """
        let fromText = try ITKTransformText.parse(text)
        // The .mat bytes built field by field from the documented layout (little-endian doubles).
        var bytes: [UInt8] = []
        func int32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        func variable(_ name: String, _ values: [Double]) {
            int32(0); int32(Int32(values.count)); int32(1); int32(0); int32(Int32(name.utf8.count + 1))
            bytes.append(contentsOf: Array(name.utf8) + [0])
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        }
        variable("AffineTransform_double_3_3", [0, -1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 5])
        variable("fixed", [10, 0, 0])
        let fromMat = try ITKTransformMatlab.parse(bytes)
        XCTAssertEqual(fromText, rotation)
        XCTAssertEqual(fromMat, rotation)
        XCTAssertEqual(ITKTransformMatlab.bytes(of: rotation), bytes)
    }

    func testFilesRoundTripInEveryFormatAndPrecision() throws {
        let folder = try temporaryFolder("transforms")
        let odd = ITKAffineTransform(
            dimension: 3, matrix: [0.9, 0.1, -0.05, -0.12, 1.1, 0.02, 0.03, -0.04, 0.95], translation: [1.25, -3.5, 0.1],
            center: [-0.3, 12.7, 40.1])
        for name in ["a.txt", "a.tfm", "a.mat"] {
            let path = folder + "/" + name
            try ITKTransformFile.write(odd, to: path)
            XCTAssertEqual(try ITKTransformFile.read(path), odd, name)
            try ITKTransformFile.write(odd, to: path, scalar: .float)
            let single = try ITKTransformFile.read(path)
            XCTAssertTrue(single.isApproximatelyEqual(to: odd, tolerance: 1e-5), name)
        }
    }

    func testBigEndianMatlabFilesAreRead() throws {
        var bytes: [UInt8] = []
        func int32(_ v: Int32) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
        func variable(_ name: String, _ values: [Float]) {
            int32(1010); int32(Int32(values.count)); int32(1); int32(0); int32(Int32(name.utf8.count + 1))
            bytes.append(contentsOf: Array(name.utf8) + [0])
            for v in values { withUnsafeBytes(of: v.bitPattern.bigEndian) { bytes.append(contentsOf: $0) } }
        }
        variable("MatrixOffsetTransformBase_float_3_3", [0, -1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 5])
        variable("fixed", [10, 0, 0])
        XCTAssertEqual(try ITKTransformMatlab.parse(bytes), rotation)
    }

    func testTwoDimensionalTransformsActInThePlaneAndLeaveZAlone() throws {
        let text = """
            #Insight Transform File V1.0
            Transform: AffineTransform_float_2_2
            FixedParameters: 1 1
            Parameters: 0 -1 1 0 2 0
            """
        let t = try ITKTransformText.parse(text)
        XCTAssertEqual(t.dimension, 2)
        // (2, 1) is one mm along x from the centre (1, 1): it turns to (1, 2), then shifts by (2, 0).
        XCTAssertEqual(t.apply(SIMD3(2, 1, 7)), SIMD3(3, 2, 7))
        let folder = try temporaryFolder("transforms")
        try ITKTransformFile.write(t, to: folder + "/t.mat")
        XCTAssertEqual(try ITKTransformFile.read(folder + "/t.mat"), t)
    }

    func testCompositeFilesApplyTheFirstListedTransformLast() throws {
        let text = """
            #Insight Transform File V1.0
            #Transform 0
            Transform: CompositeTransform_double_3_3
            #Transform 1
            Transform: AffineTransform_double_3_3
            Parameters: 2 0 0 0 2 0 0 0 2 0 0 0
            FixedParameters: 0 0 0
            #Transform 2
            Transform: AffineTransform_double_3_3
            Parameters: 1 0 0 0 1 0 0 0 1 10 0 0
            FixedParameters: 0 0 0
            """
        // ITK's composite: T1(T2(x)) — translate first, then scale.
        XCTAssertEqual(try ITKTransformText.parse(text).apply(SIMD3(1, 1, 1)), SIMD3(22, 2, 2))
    }

    func testMalformedFilesAreRefusedWithTheReason() {
        XCTAssertThrowsError(try ITKTransformText.parse("Transform: Euler3DTransform_double_3_3\nParameters: 0 0 0 0 0 0\nFixedParameters: 0 0 0 0")) {
            XCTAssertEqual($0 as? MorphoIOError, .unsupportedTransform(path: "<text>", name: "Euler3DTransform_double_3_3"))
        }
        XCTAssertThrowsError(try ITKTransformText.parse("Transform: AffineTransform_double_3_3\nParameters: 1 0 0\nFixedParameters: 0 0 0"))
        XCTAssertThrowsError(try ITKTransformText.parse("Transform: AffineTransform_double_3_3\nParameters: 1 0 0 0 1 0 0 0 1 0 0 0"))
        XCTAssertThrowsError(try ITKTransformMatlab.parse([1, 2, 3]))
        XCTAssertThrowsError(try ITKTransformFile.read("/nonexistent/x.mat")) {
            XCTAssertEqual($0 as? MorphoIOError, .fileNotFound(path: "/nonexistent/x.mat"))
        }
    }
}
