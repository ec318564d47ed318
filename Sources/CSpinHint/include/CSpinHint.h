/* The processor's spin-wait hint, for the worker pool's waiting loops (MorphoKernels' WorkerPool).
 *
 * x86's PAUSE (AArch64's YIELD) tells the core that the loop around it only polls memory: it
 * stops the loop from flooding the pipeline with speculative loads, avoids the memory-order
 * flush when the polled line finally changes, and leaves issue slots to a sibling hardware
 * thread. Swift has no spelling for it; this header is its only content. */
#ifndef MORPHOSEG_CSPINHINT_H
#define MORPHOSEG_CSPINHINT_H

static inline void morphoseg_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
