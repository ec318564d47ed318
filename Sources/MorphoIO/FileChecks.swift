import CNIfTI
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small file-system facts the readers check before trusting a header, and the atomic-write
/// helper every writer in MorphoIO uses.
public enum FileChecks {
    /// Size in bytes, or `nil` when `path` does not exist. Directories count as missing files.
    static func size(of path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR else { return nil }
        return Int64(st.st_size)
    }

    static func exists(_ path: String) -> Bool { size(of: path) != nil }

    public static func isFolder(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// `fileNotFound`, or `isFolder` when `path` is a folder: what to throw for a missing file.
    static func missing(_ path: String) -> MorphoIOError {
        isFolder(path) ? .isFolder(path: path) : .fileNotFound(path: path)
    }

    static func isGzipName(_ path: String) -> Bool { path.lowercased().hasSuffix(".gz") }

    /// `.nii` or `.nii.gz`: header and voxels in one file (not an Analyze-style `.hdr`/`.img` pair).
    static func isSingleFileNIfTIName(_ path: String) -> Bool {
        let lower = path.lowercased()
        return lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz")
    }

    /// Up to `count` bytes from the start of the file as stored (no decompression).
    static func rawPrefix(of path: String, count: Int) -> [UInt8] {
        guard let file = fopen(path, "rb") else { return [] }
        defer { fclose(file) }
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, count, file) }
        return Array(bytes.prefix(n))
    }

    /// Up to `count` bytes from the start of the file after gzip decompression (zlib reads a
    /// non-gzip file through unchanged), and zlib's message when the stream is corrupt (a small
    /// file's whole stream, trailer included, is checked by this first read).
    static func decompressedPrefix(of path: String, count: Int) -> (bytes: [UInt8], zlibError: String?) {
        guard let file = gzopen(path, "rb") else { return ([], nil) }
        defer { gzclose(file) }
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(count)) }
        var code: Int32 = 0
        let message = gzerror(file, &code).map { String(cString: $0) } ?? ""
        let problem: String? = n < 0 || (code != 0 && code != Z_BUF_ERROR) ? (message.isEmpty ? "zlib error \(code)" : message) : nil
        return (n > 0 ? Array(bytes.prefix(Int(n))) : [], problem)
    }

    static func hasGzipSignature(_ path: String) -> Bool {
        let head = rawPrefix(of: path, count: 2)
        return head.count == 2 && head[0] == 0x1f && head[1] == 0x8b
    }

    /// The gzip trailer's ISIZE: the uncompressed size of the last member modulo 2^32.
    static func gzipTrailerSize(of path: String) -> UInt32? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        guard fseek(file, -4, SEEK_END) == 0 else { return nil }
        var le = [UInt8](repeating: 0, count: 4)
        guard le.withUnsafeMutableBytes({ fread($0.baseAddress, 1, 4, file) }) == 4 else { return nil }
        return UInt32(le[0]) | UInt32(le[1]) << 8 | UInt32(le[2]) << 16 | UInt32(le[3]) << 24
    }

    /// Whether a gzip file can hold at least `needed` uncompressed bytes, without allocating
    /// more than a fixed buffer.
    ///
    /// Fast path: deflate never expands more than 1032:1, so the true size `U` satisfies
    /// `U ≡ ISIZE (mod 2^32)` and `U ≤ 1032 · compressed`; if the largest such `U` reaches
    /// `needed`, the file may hold the data (libnifti's own read then catches a corrupt stream,
    /// and what it allocates stays within that bound). Otherwise, and for multi-member files whose
    /// ISIZE covers only the last member, the stream is decompressed into a 1 MiB scratch buffer
    /// and counted, stopping as soon as `needed` is reached. Returns the bytes found (≥ `needed`
    /// means enough).
    static func gzipCanHold(_ path: String, needed: Int64) -> Int64 {
        if let compressed = size(of: path), let isize = gzipTrailerSize(of: path) {
            let bound = 1032 * compressed + 1024
            let isize64 = Int64(isize)
            if bound >= isize64 {
                let wraps = (bound - isize64) >> 32
                let largest = isize64 + wraps << 32
                if largest >= needed { return largest }
            }
        }
        return gzipDecompressedCount(of: path, limit: needed)
    }

    /// Uncompressed length of a gzip file, counting no further than `limit`.
    static func gzipDecompressedCount(of path: String, limit: Int64) -> Int64 {
        guard let file = gzopen(path, "rb") else { return 0 }
        defer { gzclose(file) }
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var total: Int64 = 0
        while total < limit {
            let n = gzread(file, buffer, UInt32(chunk))
            if n <= 0 { break }
            total += Int64(n)
        }
        return total
    }

    /// Bytes available to `path`'s voxel data: its size, or for gzip the decompressed size (or a
    /// sound upper bound of it, see `gzipCanHold`).
    static func availableBytes(_ path: String, needed: Int64) -> Int64 {
        if isGzipName(path) { return gzipCanHold(path, needed: needed) }
        return size(of: path) ?? 0
    }

    /// Fills `buffer` with the bytes of `path` from `offset` on (after decompression for a
    /// `.gz` name), then, for gzip, reads the stream to its end so that zlib checks the trailer.
    ///
    /// - Throws: `MorphoIOError.truncatedData` when the file ends first,
    ///   `.corruptCompressedData` when zlib reports a bad stream, CRC-32 or length (each naming
    ///   `reportAs`).
    static func readVoxelBytes(
        of path: String, from offset: Int64, into buffer: UnsafeMutableRawBufferPointer, reportAs: String
    ) throws {
        let needed = offset + Int64(buffer.count)
        if !isGzipName(path) {
            guard let file = fopen(path, "rb") else { throw MorphoIOError.fileNotFound(path: reportAs) }
            defer { fclose(file) }
            guard fseeko(file, off_t(offset), SEEK_SET) == 0 else {
                throw MorphoIOError.truncatedData(path: reportAs, needed: needed, available: size(of: path) ?? 0)
            }
            let n = buffer.count == 0 ? 0 : fread(buffer.baseAddress, 1, buffer.count, file)
            guard n == buffer.count else { throw MorphoIOError.truncatedData(path: reportAs, needed: needed, available: offset + Int64(n)) }
            return
        }
        guard let file = gzopen(path, "rb") else { throw MorphoIOError.fileNotFound(path: reportAs) }
        defer { gzclose(file) }
        func zlibProblem() -> MorphoIOError {
            var code: Int32 = 0
            let message = gzerror(file, &code).map { String(cString: $0) } ?? "unknown zlib error"
            return .corruptCompressedData(path: reportAs, reason: message.isEmpty ? "zlib error \(code)" : message)
        }
        let chunk = 1 << 24
        var skipped: Int64 = 0
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { scratch.deallocate() }
        while skipped < offset {
            let n = gzread(file, scratch, UInt32(min(Int64(1 << 16), offset - skipped)))
            if n < 0 { throw zlibProblem() }
            if n == 0 { throw MorphoIOError.truncatedData(path: reportAs, needed: needed, available: skipped) }
            skipped += Int64(n)
        }
        var done = 0
        while done < buffer.count {
            let n = gzread(file, buffer.baseAddress! + done, UInt32(min(chunk, buffer.count - done)))
            if n < 0 { throw zlibProblem() }
            if n == 0 { throw MorphoIOError.truncatedData(path: reportAs, needed: needed, available: offset + Int64(done)) }
            done += Int(n)
        }
        // Bytes after the voxels are allowed (and ignored); a bad trailer is not.
        while true {
            let n = gzread(file, scratch, 1 << 16)
            if n < 0 { throw zlibProblem() }
            if n == 0 { break }
        }
        // zlib reports a stream cut inside its trailer as end of file with Z_BUF_ERROR set.
        var code: Int32 = 0
        _ = gzerror(file, &code)
        if code != 0 { throw zlibProblem() }
    }

    /// A temporary name in the same folder as `path`, ending with the same `suffix` (so
    /// libraries that pick compression from the extension still do), hidden and unique enough
    /// for concurrent writers.
    static func temporarySibling(of path: String, suffix: String) -> String {
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[...$0]) } ?? ""
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let tag = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        return "\(folder).\(base).tmp-\(getpid())-\(tag)\(suffix)"
    }

    /// Writes through `produce(temporaryPath)` and then renames the result over `path`, so
    /// readers see either the old file or the complete new one. The temporary file is removed
    /// when `produce` throws.
    static func atomicWrite(to path: String, suffix: String, _ produce: (String) throws -> Void) throws {
        let temporary = temporarySibling(of: path, suffix: suffix)
        do {
            try produce(temporary)
            guard rename(temporary, path) == 0 else {
                throw MorphoIOError.writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// Writes `bytes` to `path` atomically (temporary sibling, then rename).
    static func atomicWrite(_ bytes: [UInt8], to path: String) throws {
        try atomicWrite(to: path, suffix: "") { temporary in
            guard let file = fopen(temporary, "wb") else {
                throw MorphoIOError.writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
            let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, bytes.count, file) }
            let flushed = fflush(file) == 0
            let closed = fclose(file) == 0
            guard written == bytes.count, flushed, closed else {
                throw MorphoIOError.writeFailed(path: path, reason: "short write (\(written) of \(bytes.count) bytes)")
            }
        }
    }
}

/// Temporary files of `FileChecks.atomicWrite` (`.<name>.tmp-<pid>-<tag><suffix>`) that a killed
/// writer left behind: checkpoint-sized, and never renamed into place.
public enum StaleTemporaryFiles {
    /// The temporaries in `folder` written by other processes than this one. Call it only while
    /// no other process writes into `folder` (a training run holds `RunFolderLock`).
    public static func list(in folder: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        let mine = getpid()
        return names.filter { name in
            guard name.hasPrefix("."), let range = name.range(of: ".tmp-", options: .backwards) else { return false }
            let pid = name[range.upperBound...].prefix { $0.isNumber }
            return !pid.isEmpty && Int32(pid) != mine
        }.sorted().map { "\(folder)/\($0)" }
    }

    /// Removes them; returns the paths removed.
    @discardableResult
    public static func remove(in folder: String) -> [String] {
        list(in: folder).filter { unlink($0) == 0 }
    }
}
