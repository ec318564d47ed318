import MorphoIO

/// `morphoseg apply`: an image resampled through a transform chain onto a reference grid, as
/// `antsApplyTransforms` does it.
public enum TransformApplication {
    /// `input` (all channels) sampled at `chain`'s moving point of every voxel of `reference`
    /// (see `TransformChain` for the order, `PointSampling` for the border rule).
    ///
    /// - Returns: a volume on `reference`'s grid with its header geometry; channels (and a 4D/5D
    ///   split and intent) of `input`; `header.datatype` is the input's for `.nearest` and
    ///   `.label` (integer label maps stay integer), float32 for `.linear`.
    public static func apply(
        _ chain: TransformChain, to input: Volume, reference: Volume, interpolation: Interpolation,
        defaultValue: Float = 0
    ) -> Volume {
        let points = chain.movingPoints(on: reference)
        let data = PointSampling.sample(
            input, at: points, count: reference.spatialCount, interpolation: interpolation, fill: defaultValue)
        var header = reference.header
        let spatialDims = Array(reference.header.dim.prefix(3))
        let spatialPixdim = Array(reference.header.pixdim.prefix(3))
        let extra = Array(input.header.dim.dropFirst(3))
        if input.channels > 1, !extra.isEmpty, extra.reduce(1, *) == input.channels {
            header.dim = [reference.width, reference.height, reference.depth] + extra
            header.pixdim = [reference.spacing.x, reference.spacing.y, reference.spacing.z] + Array(input.header.pixdim.dropFirst(3))
            header.intentCode = input.header.intentCode
            header.intentName = input.header.intentName
        } else {
            header.dim = input.channels > 1 ? [reference.width, reference.height, reference.depth, input.channels] : spatialDims
            header.pixdim = input.channels > 1 ? [reference.spacing.x, reference.spacing.y, reference.spacing.z, 1] : spatialPixdim
            header.intentCode = 0
            header.intentName = ""
        }
        header.datatype = interpolation == .linear ? .float32 : input.header.datatype
        header.sclSlope = 1
        header.sclInter = 0
        return Volume(
            data: data, channels: input.channels, depth: reference.depth, height: reference.height,
            width: reference.width, spacing: reference.spacing, affine: reference.affine, header: header)
    }
}
