import Foundation
import MorphoIO
import XCTest
import MorphoTestSupport

/// `NIfTI.read` on real files and on files built byte by byte from the NIfTI-1 layout.
final class NIfTIReadTests: XCTestCase {
    func testVoxelLayoutIsXFastestAsChannelDepthHeightWidth() throws {
        let folder = try temporaryFolder("morphoio")
        var fixture = NIfTI1Fixture(dim: [4, 3, 2], datatype: 4, bitpix: 16)
        var stored: [Int16] = []
        for z in 0..<2 { for y in 0..<3 { for x in 0..<4 { stored.append(Int16(x + 10 * y + 100 * z)) } } }
        fixture.payload = fixture.encode(stored)
        try writeBytes(fixture.singleFile, to: "\(folder)/layout.nii")

        let volume = try NIfTI.read("\(folder)/layout.nii")
        XCTAssertEqual([volume.channels, volume.depth, volume.height, volume.width], [1, 2, 3, 4])
        for z in 0..<2 { for y in 0..<3 { for x in 0..<4 {
            XCTAssertEqual(volume[0, z, y, x], Float(x + 10 * y + 100 * z))
            XCTAssertEqual(volume.data[(z * 3 + y) * 4 + x], Float(x + 10 * y + 100 * z))
        } } }
    }

    /// A file with a qform only (sform_code 0, as many converters write): its world affine is
    /// nibabel's `Nifti1Header.get_qform`, written out here from the quaternion,
    ///
    ///     R = [[a²+b²−c²−d², 2(bc−ad), 2(bd+ac)], [2(bc+ad), a²+c²−b²−d², 2(cd−ab)], [2(bd−ac), 2(cd+ab), a²+d²−b²−c²]]
    ///     A = [R · diag(dx, dy, qfac·dz) | qoffset],  a = √(1 − b² − c² − d²),  qfac = pixdim[0]
    ///
    /// with qfac = −1 (a left-handed grid, the flip libnifti must apply to z). The srow entries,
    /// left non-trivial, must be ignored.
    func testQformOnlyFileReadsTheAffineOfItsQuaternion() throws {
        let folder = try temporaryFolder("morphoio")
        var fixture = NIfTI1Fixture(dim: [3, 4, 5], datatype: 16, bitpix: 32)
        fixture.qfac = -1
        fixture.pixdim = [1.5, 2, 2.5, 1, 1, 1, 1]
        fixture.qformCode = 1
        fixture.sformCode = 0
        fixture.srow = [[9, 1, 0, 7], [0, 9, 1, 7], [1, 0, 9, 7]]
        fixture.quatern = [0.1, -0.2, 0.3]
        fixture.qoffset = [10, -20, 30]
        fixture.payload = fixture.encode((0..<60).map { Float(Double($0)).bitPattern })
        try writeBytes(fixture.singleFile, to: "\(folder)/qform.nii")

        let volume = try NIfTI.read("\(folder)/qform.nii")
        XCTAssertEqual(volume.header.sformCode, 0)
        XCTAssertEqual(volume.header.qformCode, 1)
        // The header stores float32: compute from the stored values, in Double, as nibabel does.
        let (b, c, d) = (Double(Float(0.1)), Double(Float(-0.2)), Double(Float(0.3)))
        let a = (1 - b * b - c * c - d * d).squareRoot()
        let r = [[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                 [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
                 [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b]]
        let scale = [1.5, 2, -2.5]   // dz times qfac = −1
        let offset = [10.0, -20, 30]
        for row in 0..<3 {
            for col in 0..<3 {
                XCTAssertEqual(volume.affine.matrix[row][col], r[row][col] * scale[col], accuracy: 1e-6, "affine[\(row)][\(col)]")
            }
            XCTAssertEqual(volume.affine.matrix[row][3], offset[row], accuracy: 1e-6, "affine[\(row)][3]")
        }
        XCTAssertEqual(volume.affine.matrix[3], [0, 0, 0, 1])
        // A voxel's world position through that matrix (nibabel: img.affine @ [i, j, k, 1]).
        let world = volume.affine.apply(SIMD3(2, 3, 4))
        for row in 0..<3 {
            let expected = r[row][0] * 1.5 * 2 + r[row][1] * 2 * 3 + r[row][2] * -2.5 * 4 + offset[row]
            XCTAssertEqual(world[row], expected, accuracy: 1e-6)
        }
        // nibabel 5 (the /tmp/ref venv) on the same header fields:
        //     h = nib.Nifti1Header(); h.set_data_shape((3, 4, 5)); h['pixdim'] = [-1, 1.5, 2, 2.5, 1, 1, 1, 1]
        //     h['quatern_b'], h['quatern_c'], h['quatern_d'] = 0.1, -0.2, 0.3
        //     h['qoffset_x'], h['qoffset_y'], h['qoffset_z'] = 10, -20, 30; h['qform_code'] = 1; h['sform_code'] = 0
        //     h.get_qform() @ [2, 3, 4, 1]  →  [11.7509445706, -10.5960249229, 22.6856684612, 1]
        for (got, nibabel) in zip([world.x, world.y, world.z], [11.7509445706, -10.5960249229, 22.6856684612]) {
            XCTAssertEqual(got, nibabel, accuracy: 1e-6)
        }
        XCTAssertEqual(volume.spacing, SIMD3(1.5, 2, 2.5))
    }

    func testBigAndLittleEndianFilesReadTheSameValues() throws {
        let folder = try temporaryFolder("morphoio")
        let values: [Int32] = [-70000, -1, 0, 1, 2, 65536, 123456, Int32.max]
        var results: [[Float]] = []
        for bigEndian in [false, true] {
            var fixture = NIfTI1Fixture(dim: [2, 2, 2], datatype: 8, bitpix: 32)
            fixture.bigEndian = bigEndian
            fixture.payload = fixture.encode(values)
            try writeBytes(fixture.singleFile, to: "\(folder)/e\(bigEndian).nii")
            results.append(try NIfTI.read("\(folder)/e\(bigEndian).nii").data)
        }
        XCTAssertEqual(results[0], values.map(Float.init))
        XCTAssertEqual(results[1], results[0])
    }

    func testEverySupportedDatatypeReadsItsValues() throws {
        let folder = try temporaryFolder("morphoio")
        func check<T: FixedWidthInteger>(_ values: [T], code: Int16, bigEndian: Bool, _ expected: [Float]) throws {
            var fixture = NIfTI1Fixture(dim: [values.count, 1, 1], datatype: code, bitpix: Int16(T.bitWidth))
            fixture.bigEndian = bigEndian
            fixture.payload = fixture.encode(values)
            let path = "\(folder)/dt\(code)\(bigEndian).nii"
            try writeBytes(fixture.singleFile, to: path)
            let volume = try NIfTI.read(path)
            XCTAssertEqual(volume.header.datatype.code, Int32(code))
            XCTAssertEqual(volume.data, expected, "datatype \(code) bigEndian \(bigEndian)")
        }
        for bigEndian in [false, true] {
            try check([UInt8(0), 1, 200, 255], code: 2, bigEndian: bigEndian, [0, 1, 200, 255])
            try check([Int8(-128), -1, 0, 127], code: 256, bigEndian: bigEndian, [-128, -1, 0, 127])
            try check([Int16(-32768), -2, 7, 32767], code: 4, bigEndian: bigEndian, [-32768, -2, 7, 32767])
            try check([UInt16(0), 3, 40000, 65535], code: 512, bigEndian: bigEndian, [0, 3, 40000, 65535])
            try check([Int32(-5), 0, 16_777_216, -16_777_216], code: 8, bigEndian: bigEndian, [-5, 0, 16_777_216, -16_777_216])
            try check([UInt32(0), 9, 3_000_000_000, 16_777_215], code: 768, bigEndian: bigEndian, [0, 9, 3e9, 16_777_215])
            try check([Int64(-9), 0, 1 << 40, -(1 << 40)], code: 1024, bigEndian: bigEndian, [-9, 0, 0x1p40, -0x1p40])
            try check([Float(1.5), -2.25, .greatestFiniteMagnitude, 0].map(\.bitPattern), code: 16, bigEndian: bigEndian,
                      [1.5, -2.25, .greatestFiniteMagnitude, 0])
            try check([Double(1.5), -1e-3, 1e30, 0].map(\.bitPattern), code: 64, bigEndian: bigEndian,
                      [1.5, Float(-1e-3), 1e30, 0])
        }
    }

    func testSlopeAndInterceptAreAppliedUnlessSlopeIsZeroOrNaN() throws {
        let folder = try temporaryFolder("morphoio")
        for (slope, inter, expected) in [(Float(2), Float(-1), [Float(-1), 1, 9]), (0, 5, [0, 1, 5]), (.nan, 5, [0, 1, 5])] {
            var fixture = NIfTI1Fixture(dim: [3, 1, 1], datatype: 2, bitpix: 8)
            fixture.sclSlope = slope
            fixture.sclInter = inter
            fixture.payload = [0, 1, 5]
            try writeBytes(fixture.singleFile, to: "\(folder)/s.nii")
            let volume = try NIfTI.read("\(folder)/s.nii")
            XCTAssertEqual(volume.data, expected, "slope \(slope) inter \(inter)")
        }
    }

    func testHeaderImagePairReadsLikeASingleFile() throws {
        let folder = try temporaryFolder("morphoio")
        var fixture = NIfTI1Fixture(dim: [3, 2, 2], datatype: 512, bitpix: 16)
        fixture.bigEndian = true
        fixture.pixdim = [0.5, 0.75, 2, 1, 1, 1, 1]
        fixture.payload = fixture.encode((0..<12).map { UInt16($0 * 1000) })
        try fixture.writePair(stem: "\(folder)/pair")
        try writeBytes(fixture.singleFile, to: "\(folder)/single.nii")

        let single = try NIfTI.read("\(folder)/single.nii")
        for name in ["pair.hdr", "pair.img"] {
            let pair = try NIfTI.read("\(folder)/\(name)")
            XCTAssertEqual(pair.data, single.data, name)
            XCTAssertEqual(pair.spacing, SIMD3(0.5, 0.75, 2), name)
        }
    }

    func testTimeAndVectorAxesBecomeChannelsAndSingleSliceIs2D() throws {
        let folder = try temporaryFolder("morphoio")
        var fixture = NIfTI1Fixture(dim: [3, 2, 1, 2, 2], datatype: 2, bitpix: 8)
        fixture.payload = (0..<24).map(UInt8.init)
        try writeBytes(fixture.singleFile, to: "\(folder)/t.nii")
        let volume = try NIfTI.read("\(folder)/t.nii")
        XCTAssertTrue(volume.is2D)
        XCTAssertEqual([volume.channels, volume.depth, volume.height, volume.width], [4, 1, 2, 3])
        // channel c = t + nt·u; voxel (y, x) of channel c is stored at c·6 + y·3 + x.
        XCTAssertEqual(volume[3, 0, 1, 2], 23)
        XCTAssertEqual(volume[1, 0, 0, 1], 7)

        var flat = NIfTI1Fixture(dim: [5, 4], datatype: 2, bitpix: 8)
        flat.payload = [UInt8](repeating: 9, count: 20)
        try writeBytes(flat.singleFile, to: "\(folder)/flat.nii")
        let image = try NIfTI.read("\(folder)/flat.nii")
        XCTAssertEqual([image.channels, image.depth, image.height, image.width], [1, 1, 4, 5])
        XCTAssertEqual(image.header.dim, [5, 4])
    }

    func testRealFilesGiveNibabelShapesAffinesAndScaledValues() throws {
        let anatomical = try NIfTI.read("\(testDataFolder)/anatomical.nii")   // big-endian int16
        XCTAssertEqual([anatomical.channels, anatomical.depth, anatomical.height, anatomical.width], [1, 25, 41, 33])
        XCTAssertEqual(anatomical.spacing, SIMD3(2, 2, 2))
        XCTAssertEqual(anatomical.affine, Affine(matrix: [[-2, 0, 0, 32], [0, 2, 0, -40], [0, 0, 2, -16], [0, 0, 0, 1]]))
        XCTAssertEqual(anatomical.data.min(), -610)
        XCTAssertEqual(anatomical.data.max(), 30393)

        let functional = try NIfTI.read("\(testDataFolder)/functional.nii")   // 4D, scl_slope/scl_inter
        XCTAssertEqual([functional.channels, functional.depth, functional.height, functional.width], [20, 3, 21, 17])
        let stats = VoxelStatistics(functional.data)
        assertClose(stats.min, 629.826171875, relative: 1e-6, "min")
        assertClose(stats.mean, 3637.408513675239, relative: 1e-6, "mean")

        let nifti2 = try NIfTI.read("\(testDataFolder)/example_nifti2.nii.gz")
        XCTAssertEqual(nifti2.header.format, .nifti2)
        XCTAssertEqual([nifti2.channels, nifti2.depth, nifti2.height, nifti2.width], [2, 12, 20, 32])
    }

    func testReadHeaderDoesNotNeedTheVoxels() throws {
        let folder = try temporaryFolder("morphoio")
        var fixture = NIfTI1Fixture(dim: [4, 4, 4], datatype: 16, bitpix: 32)
        fixture.payload = [UInt8](repeating: 0, count: 256)
        try writeBytes(fixture.singleFile, to: "\(folder)/h.nii")
        let header = try NIfTI.readHeader("\(folder)/h.nii")
        XCTAssertEqual(header.dim, [4, 4, 4])
        XCTAssertEqual(header.datatype, .float32)
    }

    func testAffineInverseUndoesApply() {
        let affine = Affine(matrix: [[-3.99, -0.01, -0.05, 118.7], [0.02, -3.25, -2.9, 132.1], [-0.03, -2.3, 4.07, 22.8], [0, 0, 0, 1]])
        let voxel = SIMD3<Double>(10.5, -3, 7.25)
        let back = affine.inverse.apply(affine.apply(voxel))
        for axis in 0..<3 { XCTAssertEqual(back[axis], voxel[axis], accuracy: 1e-12) }
        XCTAssertTrue((affine * affine.inverse).isApproximatelyEqual(to: .identity, tolerance: 1e-12))
    }
}
