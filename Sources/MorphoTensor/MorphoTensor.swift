// MorphoTensor module.
