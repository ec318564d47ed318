// libFuzzer entry for `FuzzTarget.nifti`, built by `make fuzz` (see Tests/Fuzz/README.md). The
// executable's `main` is libFuzzer's: `swift build --sanitize=fuzzer` compiles executables as
// libraries and links libFuzzer whole, so this module must not define one.
import MorphoFuzzing

@_cdecl("LLVMFuzzerTestOneInput")
public func niftiFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTarget.nifti.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
