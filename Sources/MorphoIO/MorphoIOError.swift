/// Everything MorphoIO can refuse, one case per distinct problem, each carrying the file path so
/// that `description` is one line a user can act on: `"<path>: <what is wrong>"`.
public enum MorphoIOError: Error, CustomStringConvertible, Equatable, Sendable {
    case fileNotFound(path: String)
    /// A folder where a file was expected.
    case isFolder(path: String)
    case emptyFile(path: String)
    /// Fewer bytes than a NIfTI-1 header (348) before the file ends.
    case truncatedHeader(path: String, bytes: Int)
    /// The first four bytes are not 348 or 540 in either byte order; `looksLikeText` when they
    /// are printable characters (a path to a text file, an HTML error page, …).
    case notNIfTI(path: String, headerSize: Int32, looksLikeText: Bool)
    /// The header size is right but the magic string is not `n+1`/`ni1`/`n+2`/`ni2`
    /// (ANALYZE 7.5 files, which have no magic, land here too: their geometry is unreliable).
    case badMagic(path: String, magic: String)
    /// The name ends in `.gz` but the file does not start with the gzip signature `1f 8b`.
    case notGzip(path: String)
    /// A `.hdr` whose `.img` partner is missing.
    case missingImageFile(path: String, expected: String)
    case unsupportedDatatype(path: String, code: Int, name: String)
    /// `dim` in NIfTI order as stored; `reason` says which rule it breaks.
    case badDimensions(path: String, dim: [Int], reason: String)
    /// The header promises more voxel bytes than the file holds.
    case truncatedData(path: String, needed: Int64, available: Int64)
    /// A single-file NIfTI whose `vox_offset` points inside its own header (`minimum` is where
    /// voxels may start: 352 for NIfTI-1, 544 for NIfTI-2).
    case voxelOffsetInHeader(path: String, offset: Double, minimum: Int)
    /// A gzip stream that inflates but fails its own integrity check (CRC-32 or length in the
    /// trailer), or breaks off: the voxels would be garbage.
    case corruptCompressedData(path: String, reason: String)
    /// libnifti refused the file for a reason not covered above.
    case unreadable(path: String, reason: String)
    case unsupportedExtension(path: String, expected: String)
    /// The volume to write does not fit what the call needs (reference grid, vector components).
    case shapeMismatch(path: String, reason: String)
    case writeFailed(path: String, reason: String)
    /// A malformed safetensors file or tensor; `key` is the tensor name or header field.
    case badSafeTensors(path: String, key: String, reason: String)
    /// A transform file (ITK text, ITK/ANTs `.mat`, displacement field) whose bytes do not follow
    /// its format (`reason` says where).
    case badTransformFile(path: String, reason: String)
    /// A well-formed transform file holding a kind MorphoSeg does not handle (Euler, BSpline, …).
    case unsupportedTransform(path: String, name: String)
    /// An output (given by `option`) that resolves to one of the command's inputs.
    case outputIsInput(output: String, option: String, input: String)
    /// Two outputs (`first`, `second`) that resolve to the same file.
    case outputsCollide(path: String, first: String, second: String)

    public var path: String {
        switch self {
        case .fileNotFound(let p), .isFolder(let p), .emptyFile(let p), .truncatedHeader(let p, _), .notNIfTI(let p, _, _),
             .badMagic(let p, _), .notGzip(let p), .missingImageFile(let p, _), .unsupportedDatatype(let p, _, _),
             .badDimensions(let p, _, _), .truncatedData(let p, _, _), .unreadable(let p, _),
             .voxelOffsetInHeader(let p, _, _), .corruptCompressedData(let p, _),
             .unsupportedExtension(let p, _), .shapeMismatch(let p, _), .writeFailed(let p, _),
             .badSafeTensors(let p, _, _), .badTransformFile(let p, _), .unsupportedTransform(let p, _),
             .outputIsInput(let p, _, _), .outputsCollide(let p, _, _):
            return p
        }
    }

    public var description: String {
        switch self {
        case .fileNotFound(let p):
            return "\(p): no such file"
        case .isFolder(let p):
            return "\(p): is a folder, not a file"
        case .emptyFile(let p):
            return "\(p): file is empty"
        case .truncatedHeader(let p, let n):
            return "\(p): truncated header (\(n) bytes, a NIfTI header needs at least 348)"
        case .notNIfTI(let p, let size, let text):
            return text
                ? "\(p): not a NIfTI file (it starts with text)"
                : "\(p): not a NIfTI file (header size field is \(size), expected 348 or 540)"
        case .badMagic(let p, let magic) where ["n+1", "ni1", "n+2", "ni2"].contains(magic):
            // A valid magic in a header of the other version's size (checked by headerPrefixDefect).
            let (size, version) = magic.hasSuffix("1") ? (540, "NIfTI-2") : (348, "NIfTI-1")
            return "\(p): magic \"\(magic)\" does not match the header size \(size) (a \(version) header; corrupt or mislabelled file)"
        case .badMagic(let p, let magic):
            return "\(p): bad magic \"\(magic)\" (expected n+1, ni1, n+2 or ni2; ANALYZE 7.5 is not supported)"
        case .notGzip(let p):
            return "\(p): name ends in .gz but the file is not gzip-compressed"
        case .missingImageFile(let p, let expected):
            return "\(p): image file \(expected) not found next to the header"
        case .unsupportedDatatype(let p, let code, let name):
            return "\(p): unsupported datatype \(name) (code \(code)); supported: "
                + NIfTIDatatype.allCases.map(\.rawValue).joined(separator: ", ")
        case .badDimensions(let p, let dim, let reason):
            return "\(p): bad dimensions \(dim): \(reason)"
        case .truncatedData(let p, let needed, let available):
            return "\(p): truncated data (header needs \(needed) bytes of voxels and header, file holds \(available))"
        case .voxelOffsetInHeader(let p, let offset, let minimum):
            let shown = offset.isFinite && offset == offset.rounded() ? String(Int64(offset)) : "\(offset)"
            return "\(p): vox_offset \(shown) points inside the header (voxels of a single-file NIfTI start at \(minimum) or later)"
        case .corruptCompressedData(let p, let reason):
            return "\(p): corrupt gzip data (\(reason))"
        case .unreadable(let p, let reason):
            return "\(p): \(reason)"
        case .unsupportedExtension(let p, let expected):
            return "\(p): unsupported file name, expected \(expected)"
        case .shapeMismatch(let p, let reason):
            return "\(p): \(reason)"
        case .writeFailed(let p, let reason):
            return "\(p): write failed: \(reason)"
        case .badSafeTensors(let p, let key, let reason):
            return "\(p): safetensors \(key): \(reason)"
        case .badTransformFile(let p, let reason):
            return "\(p): not a readable transform file: \(reason)"
        case .outputIsInput(let p, let option, let input):
            return "\(p): \(option) is the input \(input); outputs never overwrite inputs, choose another path"
        case .outputsCollide(let p, let first, let second):
            return "\(p): given as both \(first) and \(second); each output needs its own path"
        case .unsupportedTransform(let p, let name):
            return "\(p): transform \(name) is not supported (affine: AffineTransform_*, MatrixOffsetTransformBase_*)"
        }
    }
}

/// The name the rest of MorphoSeg catches NIfTI failures by; MorphoIO keeps one error enum.
public typealias NIfTIError = MorphoIOError
