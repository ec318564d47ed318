import CNIfTI
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// libnifti prints diagnostics on stderr at its default debug level; MorphoSeg reports its own
/// one-line errors instead. Evaluated once, before the first libnifti call.
let libniftiQuiet: Void = { nifti_set_debug_level(0) }()

/// A libnifti image owned by Swift: opened header-first and validated, then loaded, then freed.
///
/// Opening follows the order that keeps bad input cheap: existence and size, gzip signature,
/// libnifti's raw header (`nifti_read_header`, unchecked, so that each problem gets its own
/// message), then `nifti_image_read(path, 0)`, then the voxel byte count against what the image
/// file can hold — all before `nifti_image_load` allocates anything.
final class NIfTIImage {
    let path: String
    let nim: UnsafeMutablePointer<nifti_image>
    let datatype: NIfTIDatatype
    /// From the header size libnifti found (its `nifti_type` says NIfTI-1 for NIfTI-2 files).
    let format: NIfTIFormat

    private init(path: String, nim: UnsafeMutablePointer<nifti_image>, datatype: NIfTIDatatype, format: NIfTIFormat) {
        self.path = path
        self.nim = nim
        self.datatype = datatype
        self.format = format
    }

    deinit { nifti_image_free(nim) }

    /// Reads and validates the header; no voxel memory is allocated yet.
    static func open(_ path: String) throws -> NIfTIImage {
        _ = libniftiQuiet
        guard let size = FileChecks.size(of: path) else { throw FileChecks.missing(path) }
        guard size > 0 else { throw MorphoIOError.emptyFile(path: path) }
        if FileChecks.isGzipName(path), !FileChecks.hasGzipSignature(path) {
            throw MorphoIOError.notGzip(path: path)
        }
        // For a pair, the header is the `.hdr` next to a given `.img`.
        guard let found = nifti_findhdrname(path) else {
            throw MorphoIOError.unreadable(path: path, reason: "no header file found for this image")
        }
        let headerPath = String(cString: found)
        free(found)
        // A single-file image is read from its own name, never from a namesake with another extension.
        if FileChecks.isSingleFileNIfTIName(path), headerPath != path {
            throw MorphoIOError.unreadable(
                path: path, reason: "libnifti would read the header of \(headerPath) instead (a file of the same name beside it); rename one of the two")
        }
        if let defect = headerPrefixDefect(headerPath, reportAs: path) { throw defect }
        let format = try validateRawHeader(path)

        guard let nim = nifti_image_read(path, 0) else {
            if let missing = missingImageFile(for: path) {
                throw MorphoIOError.missingImageFile(path: path, expected: missing)
            }
            throw MorphoIOError.unreadable(path: path, reason: "libnifti could not read the header")
        }
        var owned: UnsafeMutablePointer<nifti_image>? = nim
        defer { if let nim = owned { nifti_image_free(nim) } }

        let image = nim.pointee
        if image.nifti_type == NIFTI_FTYPE_ANALYZE {
            throw MorphoIOError.badMagic(path: path, magic: "")
        }
        guard let datatype = NIfTIDatatype(code: image.datatype) else {
            throw MorphoIOError.unsupportedDatatype(
                path: path, code: Int(image.datatype), name: String(cString: nifti_datatype_string(image.datatype)))
        }
        let dims = (1...max(1, Int(image.dim.0))).map { NIfTIImage.dim(image, $0) }
        guard let dataBytes = checkedProduct(dims + [datatype.bytesPerVoxel]) else {
            throw MorphoIOError.badDimensions(path: path, dim: dims, reason: "voxel count overflows")
        }
        guard let imageName = image.iname.map({ String(cString: $0) }), FileChecks.exists(imageName) else {
            throw MorphoIOError.missingImageFile(path: path, expected: image.iname.map { String(cString: $0) } ?? "?")
        }
        // For a single file libnifti looks for the voxels under `x.nii` before `x.nii.gz`: asked for
        // `x.nii.gz` with an `x.nii` beside it, it would take that file's voxels (found by fuzz-nifti).
        if FileChecks.isSingleFileNIfTIName(path), imageName != path {
            throw MorphoIOError.unreadable(
                path: path, reason: "libnifti would read the voxels of \(imageName) instead (a file of the same name beside it); rename one of the two")
        }
        let (needed, overflow) = Int64(image.iname_offset).addingReportingOverflow(Int64(dataBytes))
        guard !overflow else { throw MorphoIOError.badDimensions(path: path, dim: dims, reason: "voxel bytes overflow") }
        let available = FileChecks.availableBytes(imageName, needed: needed)
        guard available >= needed else {
            throw MorphoIOError.truncatedData(path: path, needed: needed, available: available)
        }
        owned = nil
        return NIfTIImage(path: path, nim: nim, datatype: datatype, format: format)
    }

    /// `open` then `load`: a validated image with its voxels in memory.
    static func load(_ path: String) throws -> NIfTIImage {
        let image = try open(path)
        try image.load()
        return image
    }

    /// Reads the voxels into the image, in native byte order.
    ///
    /// Not `nifti_image_load`: libnifti replaces NaN and infinite voxels by 0 without a word (so
    /// an all-NaN image would read as all zeros), and stops reading a gzip stream after the voxels,
    /// before the trailer, so a stream whose CRC-32 is wrong still reads "successfully". Here the
    /// voxels are read as stored and a gzip stream is read to its end, where zlib checks the
    /// trailer's CRC-32 and length.
    func load() throws {
        let image = nim.pointee
        let imageName = image.iname.map { String(cString: $0) } ?? path
        let offset = Int64(image.iname_offset)
        let count = Int(image.nvox) * Int(image.nbyper)
        let data = malloc(max(1, count))!
        do {
            try FileChecks.readVoxelBytes(
                of: imageName, from: offset, into: UnsafeMutableRawBufferPointer(start: data, count: count), reportAs: path)
        } catch {
            free(data)
            throw error
        }
        if image.byteorder != nifti_short_order(), image.swapsize > 1 {
            nifti_swap_Nbytes(Int64(image.nvox), image.swapsize, data)
        }
        if let old = nim.pointee.data { free(old) }
        nim.pointee.data = data
    }

    // MARK: Header as MorphoSeg sees it

    var header: NIfTIHeaderInfo {
        let image = nim.pointee
        let ndim = max(1, Int(image.dim.0))
        let (slope, inter) = NIfTIImage.effectiveScaling(slope: image.scl_slope, inter: image.scl_inter)
        return NIfTIHeaderInfo(
            format: format,
            datatype: datatype,
            dim: (1...ndim).map { NIfTIImage.dim(image, $0) },
            pixdim: (1...ndim).map { NIfTIImage.pixdim(image, $0) },
            qformCode: Int(image.qform_code), sformCode: Int(image.sform_code),
            qform: Affine(image.qto_xyz), sform: Affine(image.sto_xyz),
            xyzUnits: Int(image.xyz_units), timeUnits: Int(image.time_units),
            intentCode: Int(image.intent_code), intentName: NIfTIImage.string(image.intent_name),
            sclSlope: slope, sclInter: inter, descrip: NIfTIImage.string(image.descrip))
    }

    /// nibabel's rule: a slope of 0, NaN or infinity means the stored values are used as they are.
    static func effectiveScaling(slope: Double, inter: Double) -> (Double, Double) {
        guard slope.isFinite, slope != 0 else { return (1, 0) }
        return (slope, inter.isFinite ? inter : 0)
    }

    /// `(W, H, D, C)` following the layout in `Volume`'s doc comment.
    var shape: (width: Int, height: Int, depth: Int, channels: Int) {
        let image = nim.pointee
        // libnifti leaves the sizes of axes beyond ndim at 0.
        let width = max(1, Int(image.nx)), height = max(1, Int(image.ny)), depth = max(1, Int(image.nz))
        return (width, height, depth, Int(image.nvox) / (width * height * depth))
    }

    /// `pixdim[1...3]`, with 1 for an axis the file lacks or leaves at 0.
    var spacing: SIMD3<Double> {
        let image = nim.pointee
        let ndim = Int(image.dim.0)
        return SIMD3(
            NIfTIImage.usableSpacing(ndim >= 1 ? image.dx : 0), NIfTIImage.usableSpacing(ndim >= 2 ? image.dy : 0),
            NIfTIImage.usableSpacing(ndim >= 3 ? image.dz : 0))
    }

    /// A `pixdim` entry as a voxel size: its magnitude, or 1 when it is 0 or not finite.
    static func usableSpacing(_ d: Double) -> Double { d.isFinite && d != 0 ? abs(d) : 1 }

    /// Visits the loaded voxels as their stored type.
    func visit<V: RawVoxelVisitor>(_ visitor: inout V) {
        let count = Int(nim.pointee.nvox)
        let raw = UnsafeRawPointer(nim.pointee.data!)
        func go<T: RawVoxel>(_: T.Type) {
            visitor.visit(UnsafeBufferPointer(start: raw.assumingMemoryBound(to: T.self), count: count))
        }
        switch datatype {
        case .uint8: go(UInt8.self)
        case .int8: go(Int8.self)
        case .int16: go(Int16.self)
        case .uint16: go(UInt16.self)
        case .int32: go(Int32.self)
        case .uint32: go(UInt32.self)
        case .int64: go(Int64.self)
        case .float32: go(Float.self)
        case .float64: go(Double.self)
        }
    }

    // MARK: Diagnostics before libnifti's checked read

    /// Looks at libnifti's unchecked header so that each defect gets its own message.
    private static func validateRawHeader(_ path: String) throws -> NIfTIFormat {
        var version: Int32 = 0
        guard let probe = nifti_read_header(path, &version, 0) else { throw unreadableHeader(path) }
        free(probe)
        // The version-specific readers also swap a big-endian header to native order.
        var swapped: Int32 = 0
        let dims: [Int], datatype: Int, magic: [UInt8]
        if version == 2 {
            guard let raw = nifti_read_n2_hdr(path, &swapped, 0) else { throw unreadableHeader(path) }
            defer { free(raw) }
            let h = raw.pointee
            dims = withUnsafeBytes(of: h.dim) { Array($0.bindMemory(to: Int64.self)).map { Int($0) } }
            datatype = Int(h.datatype)
            magic = withUnsafeBytes(of: h.magic) { Array($0.prefix(4)) }
        } else {
            guard let raw = nifti_read_n1_hdr(path, &swapped, 0) else { throw unreadableHeader(path) }
            defer { free(raw) }
            let h = raw.pointee
            dims = withUnsafeBytes(of: h.dim) { Array($0.bindMemory(to: Int16.self)).map { Int($0) } }
            datatype = Int(h.datatype)
            magic = withUnsafeBytes(of: h.magic) { Array($0.prefix(4)) }
        }
        let magicString = String(decoding: magic.prefix { $0 != 0 }, as: UTF8.self)
        let digit: UInt8 = version == 2 ? UInt8(ascii: "2") : UInt8(ascii: "1")
        guard magic.count == 4, magic[0] == UInt8(ascii: "n"), magic[1] == UInt8(ascii: "+") || magic[1] == UInt8(ascii: "i"),
              magic[2] == digit, magic[3] == 0
        else {
            throw MorphoIOError.badMagic(path: path, magic: magicString.unicodeScalars.map { $0.isASCII && $0.value >= 32 ? String($0) : "?" }.joined())
        }
        let ndim = dims[0]
        guard (1...7).contains(ndim) else {
            throw MorphoIOError.badDimensions(path: path, dim: dims, reason: "dim[0] must be 1 to 7")
        }
        let used = Array(dims[1...ndim])
        if let bad = used.firstIndex(where: { $0 < 1 }) {
            throw MorphoIOError.badDimensions(path: path, dim: used, reason: "dim[\(bad + 1)] is \(used[bad]), must be at least 1")
        }
        guard NIfTIDatatype(code: Int32(datatype)) != nil else {
            throw MorphoIOError.unsupportedDatatype(
                path: path, code: datatype, name: String(cString: nifti_datatype_string(Int32(datatype))))
        }
        guard checkedProduct(used) != nil else {
            throw MorphoIOError.badDimensions(path: path, dim: used, reason: "voxel count overflows")
        }
        return version == 2 ? .nifti2 : .nifti1
    }

    /// Checked on the first 540 decompressed bytes before libnifti sees the file, because libnifti
    /// hands back whatever it read and leaves the checks to its callers: too short for a header;
    /// not starting with a NIfTI header size (348 or 540, either byte order); a magic string that
    /// is not the one of that header size (libnifti picks the struct to byte-swap from the magic
    /// but reads into the one of the size: a swapped NIfTI-1 header saying `n+2` is swapped as a
    /// 540-byte NIfTI-2 header in a 348-byte buffer, which smashes its stack); a single file whose
    /// `vox_offset` points into its own header.
    static func headerPrefixDefect(_ headerPath: String, reportAs path: String) -> MorphoIOError? {
        let (head, zlibError) = FileChecks.decompressedPrefix(of: headerPath, count: 540)
        if let zlibError { return .corruptCompressedData(path: path, reason: zlibError) }
        guard head.count >= 4 else { return .truncatedHeader(path: path, bytes: head.count) }
        let le = UInt32(head[0]) | UInt32(head[1]) << 8 | UInt32(head[2]) << 16 | UInt32(head[3]) << 24
        let swapped = ![348, 540].contains(le)
        let size = swapped ? le.byteSwapped : le
        guard [348, 540].contains(size) else {
            let sample = head.prefix(64)
            let text = sample.allSatisfy { (0x20..<0x7f).contains($0) || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }
            return .notNIfTI(path: path, headerSize: Int32(bitPattern: le), looksLikeText: text)
        }
        guard head.count >= Int(size) else { return .truncatedHeader(path: path, bytes: head.count) }
        let version: UInt8 = size == 540 ? 2 : 1
        let magic = Array(head[(version == 2 ? 4 : 344)..<(version == 2 ? 8 : 348)])
        guard magic[0] == UInt8(ascii: "n"), magic[1] == UInt8(ascii: "+") || magic[1] == UInt8(ascii: "i"),
              magic[2] == UInt8(ascii: "0") + version, magic[3] == 0
        else {
            let shown = magic.prefix { $0 != 0 }.map { (0x20..<0x7f).contains($0) ? String(UnicodeScalar($0)) : "?" }.joined()
            return .badMagic(path: path, magic: shown)
        }
        guard magic[1] == UInt8(ascii: "+") else { return nil }   // a .hdr/.img pair: voxels from offset 0 of the .img
        func word<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
            var v: T = 0
            withUnsafeMutableBytes(of: &v) { for i in 0..<$0.count { $0[i] = head[offset + i] } }
            return swapped ? v.byteSwapped : v
        }
        let offset = version == 2 ? Double(word(Int64.self, at: 168)) : Double(Float(bitPattern: word(UInt32.self, at: 108)))
        let minimum = Int(size) + 4
        return offset >= Double(minimum) ? nil : .voxelOffsetInHeader(path: path, offset: offset, minimum: minimum)
    }

    private static func unreadableHeader(_ path: String) -> MorphoIOError {
        if let missing = missingImageFile(for: path) { return .missingImageFile(path: path, expected: missing) }
        return .unreadable(path: path, reason: "libnifti could not read the header")
    }

    /// For a `.hdr` (or `.hdr.gz`) path, the partner `.img` name when neither it nor its
    /// gzip variant exists.
    private static func missingImageFile(for path: String) -> String? {
        let lower = path.lowercased()
        for (hdr, img) in [(".hdr", ".img"), (".hdr.gz", ".img.gz")] where lower.hasSuffix(hdr) {
            let stem = String(path.dropLast(hdr.count))
            let candidates = [stem + img, stem + ".img", stem + ".img.gz", stem + ".IMG"]
            return candidates.contains(where: FileChecks.exists) ? nil : stem + img
        }
        return nil
    }

    // MARK: C plumbing

    static func dim(_ image: nifti_image, _ axis: Int) -> Int {
        withUnsafeBytes(of: image.dim) { Int($0.bindMemory(to: Int64.self)[axis]) }
    }

    static func pixdim(_ image: nifti_image, _ axis: Int) -> Double {
        withUnsafeBytes(of: image.pixdim) { $0.bindMemory(to: Double.self)[axis] }
    }

    static func string<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

/// Product of positive sizes, or `nil` when it overflows `Int`.
func checkedProduct(_ values: [Int]) -> Int? {
    var product = 1
    for v in values {
        let (p, overflow) = product.multipliedReportingOverflow(by: v)
        if overflow { return nil }
        product = p
    }
    return product
}

/// A voxel type as stored on disk, readable as `Double`.
protocol RawVoxel {
    var doubleValue: Double { get }
}
extension UInt8: RawVoxel { var doubleValue: Double { Double(self) } }
extension Int8: RawVoxel { var doubleValue: Double { Double(self) } }
extension Int16: RawVoxel { var doubleValue: Double { Double(self) } }
extension UInt16: RawVoxel { var doubleValue: Double { Double(self) } }
extension Int32: RawVoxel { var doubleValue: Double { Double(self) } }
extension UInt32: RawVoxel { var doubleValue: Double { Double(self) } }
extension Int64: RawVoxel { var doubleValue: Double { Double(self) } }
extension Float: RawVoxel { var doubleValue: Double { Double(self) } }
extension Double: RawVoxel { var doubleValue: Double { self } }

/// One pass over stored voxels of whatever type the file holds (see `NIfTIImage.visit`).
protocol RawVoxelVisitor {
    mutating func visit<T: RawVoxel>(_ raw: UnsafeBufferPointer<T>)
}

/// Stored values → `value * slope + inter` as `Float`, computed in `Double`.
struct ScaledFloatConverter: RawVoxelVisitor {
    let slope: Double, inter: Double
    var output: [Float] = []

    mutating func visit<T: RawVoxel>(_ raw: UnsafeBufferPointer<T>) {
        let slope = slope, inter = inter
        output = [Float](unsafeUninitializedCapacity: raw.count) { out, initialized in
            for i in 0..<raw.count { out[i] = Float(raw[i].doubleValue * slope + inter) }
            initialized = raw.count
        }
    }
}

extension Affine {
    init(_ m: nifti_dmat44) {
        let rows = withUnsafeBytes(of: m.m) { Array($0.bindMemory(to: Double.self)) }
        self.init(matrix: (0..<4).map { r in Array(rows[(r * 4)..<(r * 4 + 4)]) })
    }

    var dmat44: nifti_dmat44 {
        var out = nifti_dmat44()
        withUnsafeMutableBytes(of: &out.m) { buffer in
            let d = buffer.bindMemory(to: Double.self)
            for r in 0..<4 { for c in 0..<4 { d[r * 4 + c] = matrix[r][c] } }
        }
        return out
    }
}
