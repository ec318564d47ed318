@testable import MorphoKernels
import XCTest

/// The register file the kernels block for is the one the binary was compiled for
/// (`MORPHOSEG_TARGET_CPU`, default `native`), which the CPU running it must have and may exceed.
final class VectorRegistersTests: XCTestCase {
    func testTheCompiledExtensionsAreOnesThisCPUHas() throws {
        let flags = VectorRegisters.cpuFlags()
        try XCTSkipIf(flags.isEmpty, "no /proc/cpuinfo flags to compare with")
        if VectorRegisters.hasAVX512 {
            XCTAssertTrue(flags.contains("avx512f"))
            XCTAssertTrue(VectorRegisters.hasAVX2FMA, "an AVX-512 target has AVX2 and FMA too")
        }
        if VectorRegisters.hasAVX2FMA { XCTAssertTrue(flags.contains("avx2") && flags.contains("fma")) }
        XCTAssertEqual(VectorRegisters.cpuHasAVX512, flags.contains("avx512f"))
    }

    func testTheRegisterBlocksFollowTheCompiledRegisterFileNotTheCPU() {
        XCTAssertEqual(ConvolutionMicrokernel.blocksForAVX512, VectorRegisters.hasAVX512)
        XCTAssertEqual(VectorRegisters.convVectors * VectorRegisters.registersPerVector, VectorRegisters.hasAVX512 ? 32 : 16)
        XCTAssertEqual(ConvolutionMicrokernel.spatialChannels, VectorRegisters.hasAVX512 ? 8 : 6)
        // The FMA peak's accumulators take 12 of the registers in both files.
        XCTAssertEqual(FMAPeak.accumulators * VectorRegisters.registersPerVector, 12)
    }
}
