/// The one check that voxel values are numbers MorphoSeg can work with: images, label maps and
/// registration inputs all go through it before anything else touches their voxels.
///
/// - values: the voxels, any layout (a `Volume`'s or `VoxelArray`'s `data`).
/// - path: the file (or a stand-in such as `<image>`) the error names.
/// - Throws: `MorphoTrainError.nonFiniteVoxels(path:count:)` with the number of NaN or infinite
///   values when there is at least one.
public func checkFiniteVoxels(_ values: [Float], path: String) throws {
    var bad = 0
    for v in values where !v.isFinite { bad += 1 }
    if bad > 0 { throw MorphoTrainError.nonFiniteVoxels(path: path, count: bad) }
}
