// MorphoNN module.
