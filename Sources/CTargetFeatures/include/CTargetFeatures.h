/* The vector extensions the *compiler* targets where this header is read, as Clang's predefined
 * target macros (__AVX512F__, __AVX2__, __FMA__) state them.
 *
 * Swift has no `#if` on target features, but a Swift module's Clang importer is configured from
 * the same target as its code generator: `-target-cpu X` reaches Clang as the CPU X, and
 * `-Xcc -march=x86-64-v3` sets the CPU and features that Swift's own code generation then uses.
 * So when MorphoKernels imports this header, these constants are exactly the extensions its
 * `SIMD16<Float>` code is compiled with (zmm registers or ymm pairs), whatever the CPU that later
 * runs it. VectorRegisters reads them to size the register blocks. */
#ifndef MORPHOSEG_CTARGETFEATURES_H
#define MORPHOSEG_CTARGETFEATURES_H

#if defined(__AVX512F__)
#define MORPHOSEG_TARGET_AVX512F 1
#else
#define MORPHOSEG_TARGET_AVX512F 0
#endif

#if defined(__AVX2__)
#define MORPHOSEG_TARGET_AVX2 1
#else
#define MORPHOSEG_TARGET_AVX2 0
#endif

#if defined(__FMA__)
#define MORPHOSEG_TARGET_FMA 1
#else
#define MORPHOSEG_TARGET_FMA 0
#endif

#endif
