// libFuzzer entry for `FuzzTarget.safetensors`, built by `make fuzz` (see Tests/Fuzz/README.md). The
// executable's `main` is libFuzzer's: `swift build --sanitize=fuzzer` compiles executables as
// libraries and links libFuzzer whole, so this module must not define one.
import MorphoFuzzing

@_cdecl("LLVMFuzzerTestOneInput")
public func safetensorsFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTarget.safetensors.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
