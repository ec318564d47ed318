import ArgumentParser
import MorphoIO

/// `morphoseg info FILE [--json]`: header, geometry and value statistics of a NIfTI file.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a NIfTI file's header, voxel-to-world affine and value statistics.",
        discussion: """
            Reads .nii, .nii.gz and .hdr/.img pairs (NIfTI-1 and NIfTI-2). The affine is the sform \
            when sform_code > 0, else the qform when qform_code > 0, else diag(pixdim). Statistics \
            are over the finite scaled values (scl_slope/scl_inter applied), in float64; NaN and \
            infinite voxels are counted apart (a "non-finite" line). With --json the keys are \
            format, dim, datatype, pixdim, qform_code, sform_code, affine, scl_slope, scl_inter, \
            stats {min, max, mean, sum} and non_finite {nan, inf}; dim and pixdim are in NIfTI \
            order (x, y, z, …). A gzip stream whose CRC or length check fails, or a vox_offset \
            inside the header, is an error.
            """)

    @Argument(help: "The NIfTI file (.nii, .nii.gz, .hdr or .img).")
    var file: String

    @Flag(help: "Print one JSON object instead of the human-readable summary.")
    var json = false

    func run() throws {
        // A MorphoIOError propagates: ArgumentParser prints its one-line description and exits 1.
        let info = try VolumeInfo.read(file)
        print(json ? info.json : info.summary)
    }
}
