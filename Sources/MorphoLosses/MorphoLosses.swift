// MorphoLosses module.
