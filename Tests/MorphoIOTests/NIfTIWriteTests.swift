import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// `NIfTI.write` / `writeDisplacementField`: what is written reads back with the same values and
/// the reference's geometry, and writes are atomic.
final class NIfTIWriteTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws { folder = try temporaryFolder("morphoio") }

    /// A volume on `reference`'s grid holding `value(index)` in every voxel of every channel.
    private func volume(like reference: Volume, channels: Int = 1, _ value: (Int) -> Float) -> Volume {
        let count = channels * reference.spatialCount
        return Volume(
            channels: channels, depth: reference.depth, height: reference.height, width: reference.width,
            data: (0..<count).map(value), spacing: reference.spacing, affine: reference.affine)
    }

    private func assertSameGeometry(_ a: NIfTIHeaderInfo, _ b: NIfTIHeaderInfo, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.qformCode, b.qformCode, "qform_code", file: file, line: line)
        XCTAssertEqual(a.sformCode, b.sformCode, "sform_code", file: file, line: line)
        XCTAssertTrue(a.qform.isApproximatelyEqual(to: b.qform, tolerance: 1e-5), "qform \(a.qform) vs \(b.qform)", file: file, line: line)
        if a.sformCode > 0 {
            XCTAssertTrue(a.sform.isApproximatelyEqual(to: b.sform, tolerance: 1e-5), "sform", file: file, line: line)
        }
        for axis in 0..<3 { XCTAssertEqual(a.pixdim[axis], b.pixdim[axis], accuracy: 1e-6, "pixdim", file: file, line: line) }
        XCTAssertEqual(a.xyzUnits, b.xyzUnits, "units", file: file, line: line)
    }

    func testFloat32WriteCopiesReferenceGeometryAndReadsBackTheSameValues() throws {
        for name in ["aniso_vox.nii.gz", "anatomical.nii", "standard.nii.gz"] {
            let reference = try NIfTI.read("\(testDataFolder)/\(name)")
            let result = volume(like: reference) { Float($0 % 97) * 0.37 - 5 }
            try NIfTI.write(result, to: "\(folder)/out.nii", like: reference)
            let back = try NIfTI.read("\(folder)/out.nii")
            XCTAssertEqual(back.data, result.data, name)
            XCTAssertEqual(back.header.datatype, .float32)
            XCTAssertTrue(back.sameGrid(as: reference, tolerance: 1e-5), "\(name): \(back.affine) vs \(reference.affine)")
            assertSameGeometry(back.header, reference.header)
        }
    }

    func testUInt8LabelsRoundTripThroughGzip() throws {
        let reference = try NIfTI.read("\(testDataFolder)/aniso_vox.nii.gz")
        let labels = volume(like: reference) { Float($0 % 4) }
        try NIfTI.write(labels, to: "\(folder)/labels.nii.gz", datatype: .uint8, like: reference)
        XCTAssertEqual(try readBytes("\(folder)/labels.nii.gz").prefix(2), [0x1f, 0x8b])
        let back = try NIfTI.read("\(folder)/labels.nii.gz")
        XCTAssertEqual(back.header.datatype, .uint8)
        XCTAssertEqual(back.data, labels.data)
        assertSameGeometry(back.header, reference.header)
    }

    func testInt16WriteRoundsAndClampsAndMapsNaNToZero() throws {
        let reference = try NIfTI.read("\(testDataFolder)/standard.nii.gz")
        let inputs: [Float] = [1.4, 1.6, -2.5, 40000, -40000, .nan, .infinity, 7]
        let expected: [Float] = [1, 2, -3, 32767, -32768, 0, 32767, 7]
        let v = volume(like: reference) { inputs[$0 % inputs.count] }
        try NIfTI.write(v, to: "\(folder)/s.nii", datatype: .int16, like: reference)
        let back = try NIfTI.read("\(folder)/s.nii")
        XCTAssertEqual(back.header.datatype, .int16)
        XCTAssertEqual(back.data, (0..<v.data.count).map { expected[$0 % expected.count] })
    }

    func testEveryDatatypeRoundTripsRepresentableValues() throws {
        let grid = Volume(depth: 2, height: 2, width: 3, data: [Float](repeating: 0, count: 12), spacing: SIMD3(1, 2, 3))
        for datatype in NIfTIDatatype.allCases {
            let values: [Float] = (0..<12).map { datatype.isInteger ? Float($0 * 10) : Float($0) * 0.5 - 2.25 }
            var v = grid
            v.data = values
            try NIfTI.write(v, to: "\(folder)/\(datatype).nii", datatype: datatype)
            let back = try NIfTI.read("\(folder)/\(datatype).nii")
            XCTAssertEqual(back.header.datatype, datatype)
            XCTAssertEqual(back.data, values, "\(datatype)")
            XCTAssertEqual(back.spacing, SIMD3(1, 2, 3))
        }
    }

    func testFreshVolumeWritesItsRotatedAffineAsSformAndQform() throws {
        let angle = 0.3
        let affine = Affine(matrix: [
            [cos(angle) * 1.5, -sin(angle) * 2, 0, -10],
            [sin(angle) * 1.5, cos(angle) * 2, 0, 20.5],
            [0, 0, 2.5, 3],
            [0, 0, 0, 1],
        ])
        let v = Volume(depth: 3, height: 4, width: 5, data: (0..<60).map(Float.init), spacing: SIMD3(1.5, 2, 2.5), affine: affine)
        XCTAssertEqual(v.header.sformCode, 2)
        XCTAssertEqual(v.header.qformCode, 2)
        try NIfTI.write(v, to: "\(folder)/fresh.nii.gz")
        let back = try NIfTI.read("\(folder)/fresh.nii.gz")
        XCTAssertTrue(back.affine.isApproximatelyEqual(to: affine, tolerance: 1e-5))
        XCTAssertTrue(back.header.qform.isApproximatelyEqual(to: affine, tolerance: 1e-5))
        XCTAssertEqual(back.spacing, SIMD3(1.5, 2, 2.5))

        // A sheared affine has no qform: only the sform carries it.
        var sheared = v
        sheared.affine.matrix[0][1] = 0.7
        try NIfTI.write(sheared, to: "\(folder)/shear.nii")
        let shearedBack = try NIfTI.read("\(folder)/shear.nii")
        XCTAssertEqual(shearedBack.header.qformCode, 0)
        XCTAssertTrue(shearedBack.affine.isApproximatelyEqual(to: sheared.affine, tolerance: 1e-5))
    }

    func testTwoDimensionalVolumeRoundTrips() throws {
        let v = Volume(depth: 1, height: 3, width: 4, data: (0..<12).map { Float($0) * 1.25 }, spacing: SIMD3(0.5, 0.25, 1))
        try NIfTI.write(v, to: "\(folder)/slice.nii")
        let back = try NIfTI.read("\(folder)/slice.nii")
        XCTAssertTrue(back.is2D)
        XCTAssertEqual(back.header.dim, [4, 3])
        XCTAssertEqual(back.data, v.data)
        XCTAssertEqual(back.spacing, v.spacing)
        XCTAssertTrue(back.sameGrid(as: v))
    }

    func testMultiChannelVolumeRoundTripsAs4D() throws {
        let reference = try NIfTI.read("\(testDataFolder)/standard.nii.gz")
        let probabilities = volume(like: reference, channels: 3) { Float($0) / 420 }
        try NIfTI.write(probabilities, to: "\(folder)/p.nii.gz", like: reference)
        let back = try NIfTI.read("\(folder)/p.nii.gz")
        XCTAssertEqual(back.header.dim, [4, 5, 7, 3])
        XCTAssertEqual(back.channels, 3)
        XCTAssertEqual(back.data, probabilities.data)
    }

    func testDisplacementFieldRoundTripsAs5DVector() throws {
        let reference = try NIfTI.read("\(testDataFolder)/aniso_vox.nii.gz")
        let field = volume(like: reference, channels: 3) { Float($0 % 1000) * 0.01 - 3 }
        try NIfTI.writeDisplacementField(field, to: "\(folder)/flow.nii.gz", like: reference)
        let back = try NIfTI.read("\(folder)/flow.nii.gz")
        XCTAssertEqual(back.header.dim, [58, 58, 24, 1, 3])
        XCTAssertEqual(back.header.intentCode, 1007)
        XCTAssertEqual(back.channels, 3)
        XCTAssertEqual(back.data, field.data)
        assertSameGeometry(back.header, reference.header)
        // Component 1 (y) of voxel (z=2, y=3, x=4) sits at channel 1.
        XCTAssertEqual(back[1, 2, 3, 4], field.data[((1 * 24 + 2) * 58 + 3) * 58 + 4])

        // Writing the read field again (plain write) keeps the 5D vector layout.
        try NIfTI.write(back, to: "\(folder)/again.nii")
        let again = try NIfTI.read("\(folder)/again.nii")
        XCTAssertEqual(again.header.dim, [58, 58, 24, 1, 3])
        XCTAssertEqual(again.header.intentCode, 1007)
    }

    func testTwoDimensionalDisplacementFieldHasTwoComponents() throws {
        let field = Volume(channels: 2, depth: 1, height: 3, width: 4, data: (0..<24).map(Float.init))
        try NIfTI.writeDisplacementField(field, to: "\(folder)/flow2d.nii")
        let back = try NIfTI.read("\(folder)/flow2d.nii")
        XCTAssertEqual(back.header.dim, [4, 3, 1, 1, 2])
        XCTAssertEqual(back.data, field.data)
        XCTAssertThrowsError(try NIfTI.writeDisplacementField(Volume(depth: 2, height: 2, width: 2, data: [Float](repeating: 0, count: 8)),
                                                              to: "\(folder)/bad.nii"))
    }

    func testNIfTI2ReferenceGeometryIsWrittenAsNIfTI1() throws {
        let reference = try NIfTI.read("\(testDataFolder)/example_nifti2.nii.gz")
        let v = volume(like: reference) { Float($0) }
        try NIfTI.write(v, to: "\(folder)/n2.nii", like: reference)
        let back = try NIfTI.read("\(folder)/n2.nii")
        XCTAssertEqual(back.header.format, .nifti1)
        XCTAssertEqual(back.data, v.data)
        assertSameGeometry(back.header, reference.header)
    }

    func testChangedAffineIsWhatGetsWritten() throws {
        var v = try NIfTI.read("\(testDataFolder)/standard.nii.gz")
        v.affine.matrix[0][3] = 12.5
        try NIfTI.write(v, to: "\(folder)/moved.nii")
        XCTAssertEqual(try NIfTI.read("\(folder)/moved.nii").affine.matrix[0][3], 12.5)
    }

    func testWriteRejectsAReferenceOnAnotherGridAndLeavesTheOldFile() throws {
        let reference = try NIfTI.read("\(testDataFolder)/standard.nii.gz")
        let first = volume(like: reference) { Float($0) }
        try NIfTI.write(first, to: "\(folder)/keep.nii", like: reference)
        let before = try readBytes("\(folder)/keep.nii")
        let other = Volume(depth: 2, height: 2, width: 2, data: [Float](repeating: 1, count: 8))
        XCTAssertThrowsError(try NIfTI.write(other, to: "\(folder)/keep.nii", like: reference)) { error in
            guard case NIfTIError.shapeMismatch = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try readBytes("\(folder)/keep.nii"), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["keep.nii"])
    }

    func testWriteIntoAMissingFolderFailsWithoutLeavingFiles() throws {
        let v = Volume(depth: 2, height: 2, width: 2, data: [Float](repeating: 1, count: 8))
        XCTAssertThrowsError(try NIfTI.write(v, to: "\(folder)/no/such/dir/x.nii.gz")) { error in
            guard case NIfTIError.writeFailed = error else { return XCTFail("\(error)") }
            XCTAssertFalse("\(error)".contains("\n"))
        }
        XCTAssertThrowsError(try NIfTI.write(v, to: "\(folder)/x.mha")) { error in
            guard case NIfTIError.unsupportedExtension = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }

    func testOverwriteReplacesTheFileAtomically() throws {
        let a = Volume(depth: 2, height: 2, width: 2, data: [Float](repeating: 1, count: 8))
        var b = a
        b.data = [Float](repeating: 2, count: 8)
        try NIfTI.write(a, to: "\(folder)/v.nii.gz")
        try NIfTI.write(b, to: "\(folder)/v.nii.gz")
        XCTAssertEqual(try NIfTI.read("\(folder)/v.nii.gz").data, b.data)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["v.nii.gz"])
    }
}
