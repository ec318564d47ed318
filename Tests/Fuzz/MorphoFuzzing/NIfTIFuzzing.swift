import CNIfTI
import Foundation
import MorphoIO

/// The NIfTI reader on arbitrary bytes, presented three ways (each read like `morphoseg info`
/// does: `VolumeInfo.read`, header, voxels and statistics, then its JSON and summary):
///
/// 1. as stored: `input.nii`, or `input.nii.gz` when the bytes start with the gzip signature
///    (so mutated gzip streams — bad CRC, short or corrupt deflate data — reach the gzip path);
/// 2. gzip-compressed by us into `input.nii.gz` when they are not gzip already, so mutations of
///    header and voxels also go through decompression with an intact stream;
/// 3. split into a `.hdr`/`.img` pair after the header (348 bytes, 540 for NIfTI-2 sizes).
enum NIfTIFuzzing {
    static func run(_ bytes: UnsafeRawBufferPointer) -> [FuzzOutcome] {
        let isGzip = bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
        var outcomes: [FuzzOutcome] = []
        // Stems differ between the presentations: libnifti reads the header of `x.nii` when asked
        // for `x.nii.gz` and both exist (see Tests/Fuzz/README.md, "Findings").
        let stored = isGzip ? "stored-gzip.nii.gz" : "stored.nii"
        outcomes.append(read(ScratchFolder.write(bytes, as: stored)))
        if !isGzip {
            outcomes.append(read(writeGzip(bytes, as: "compressed.nii.gz")))
        }
        let headerSize = bytes.count >= 4 && (bytes[0] == 0x1c || bytes[3] == 0x1c) ? 540 : 348
        if bytes.count >= headerSize {
            let header = UnsafeRawBufferPointer(rebasing: bytes[..<headerSize])
            let image = UnsafeRawBufferPointer(rebasing: bytes[headerSize...])
            let hdr = ScratchFolder.write(header, as: "pair.hdr")
            _ = ScratchFolder.write(image, as: "pair.img")
            outcomes.append(read(hdr))
        }
        return outcomes
    }

    private static func read(_ path: String) -> FuzzOutcome {
        .of {
            let info = try VolumeInfo.read(path)
            return "\(info.header.dim) \(info.json.count) \(info.summary.count)"
        }
    }

    /// `bytes` deflated with zlib (level 1) into `<scratch>/<name>`.
    private static func writeGzip(_ bytes: UnsafeRawBufferPointer, as name: String) -> String {
        let path = (ScratchFolder.path as NSString).appendingPathComponent(name)
        guard let file = gzopen(path, "wb1") else { return path }
        if let base = bytes.baseAddress, bytes.count > 0 { _ = gzwrite(file, base, UInt32(bytes.count)) }
        gzclose(file)
        return path
    }
}
