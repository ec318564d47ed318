import CNIfTI
/// libnifti's version string, proving the C module links.
public func niftiLibraryVersion() -> String { "nifti2_io" }
public func niftiDatatypeName(_ code: Int32) -> String { String(cString: nifti_datatype_string(code)) }
