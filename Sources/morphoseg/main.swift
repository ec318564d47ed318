import MorphoIO
print(niftiDatatypeName(16))
