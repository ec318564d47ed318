import MorphoIO

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

/// The `--nan-as V` (`data.nan_as`) rule, the user's explicit choice: every NaN and infinite
/// voxel becomes `replacement`; nil leaves the values for `checkFiniteVoxels` to refuse.
public func replacingNonFiniteVoxels(_ values: [Float], with replacement: Float?) -> [Float] {
    guard let replacement, values.contains(where: { !$0.isFinite }) else { return values }
    return values.map { $0.isFinite ? $0 : replacement }
}

extension Volume {
    /// This volume with `replacingNonFiniteVoxels(_:with:)` applied to its voxels.
    public func replacingNonFiniteVoxels(with replacement: Float?) -> Volume {
        var v = self
        v.data = MorphoTrain.replacingNonFiniteVoxels(data, with: replacement)
        return v
    }
}

extension Volume {
    /// An intensity image a command reads (`apply`, `register deform`): NaN and infinite voxels
    /// become `nanAs` when the user gave `--nan-as V`; otherwise such an image is refused, naming
    /// the file and the count (`checkFiniteVoxels`).
    public static func readImage(_ path: String, nanAs: Float?) throws -> Volume {
        let volume = try NIfTI.read(path).replacingNonFiniteVoxels(with: nanAs)
        try checkFiniteVoxels(volume.data, path: path)
        return volume
    }

    /// A label map or tissue probability map a command reads: NaN and infinite voxels are
    /// refused and never replaced (`--nan-as` gives intensities a value; a class has none to give).
    public static func readLabelMap(_ path: String) throws -> Volume {
        let volume = try NIfTI.read(path)
        var bad = 0
        for v in volume.data where !v.isFinite { bad += 1 }
        if bad > 0 { throw MorphoTrainError.nonFiniteLabels(path: path, count: bad) }
        return volume
    }
}

extension ITKDisplacementField {
    /// This field read from `path` with `--nan-as V` applied to its components (mm), then
    /// refused if any component is still NaN or infinite: a non-finite displacement would send
    /// its voxel nowhere.
    public func replacingNonFiniteComponents(with nanAs: Float?, path: String) throws -> ITKDisplacementField {
        var field = self
        field.volume = volume.replacingNonFiniteVoxels(with: nanAs)
        try checkFiniteVoxels(field.volume.data, path: path)
        return field
    }
}
