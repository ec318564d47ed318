// MorphoTrain module.
