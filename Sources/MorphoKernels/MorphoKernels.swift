// MorphoKernels module.
