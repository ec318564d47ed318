import MorphoIO
import MorphoTensor

/// The files of one registration pair. Labels are optional (they enable Dice reporting and the
/// semi-supervised Dice loss); each label map must lie on its own image's grid.
public struct RegistrationPairFiles: Codable, Equatable, Sendable {
    public var fixed: String
    public var moving: String
    public var fixedLabels: String?
    public var movingLabels: String?

    public init(fixed: String, moving: String, fixedLabels: String? = nil, movingLabels: String? = nil) {
        self.fixed = fixed
        self.moving = moving
        self.fixedLabels = fixedLabels
        self.movingLabels = movingLabels
    }

    enum CodingKeys: String, CodingKey {
        case fixed, moving
        case fixedLabels = "fixed_labels"
        case movingLabels = "moving_labels"
    }
}

/// A fixed image, a moving image brought onto the fixed grid through both affines, and their
/// optional label maps (the moving one resampled with nearest-neighbour). Everything here shares
/// the fixed image's grid and geometry, so a network, a field or a Dice score can compare them
/// voxel by voxel.
public struct RegistrationPair: Sendable {
    public var files: RegistrationPairFiles
    public var fixed: Volume
    /// The moving image on the fixed grid (linear interpolation, 0 outside its field of view).
    public var moving: Volume
    public var fixedLabels: Volume?
    /// The moving labels on the fixed grid (nearest, 0 outside).
    public var movingLabels: Volume?
    /// Fraction (0…1) of fixed voxels that the moving image covers.
    public var overlap: Double

    /// Reads and checks the files, then resamples the moving side onto the fixed grid.
    ///
    /// - Throws: `MorphoIOError` for unreadable files; `MorphoTrainError` for a multi-channel
    ///   image, NaN/infinite voxels, a label map on another grid than its image, a 2D/3D mix, or
    ///   images that do not overlap in world space — each naming the file.
    public static func load(_ files: RegistrationPairFiles) throws -> RegistrationPair {
        let fixed = try NIfTI.read(files.fixed)
        let moving = try NIfTI.read(files.moving)
        let fixedLabels = try files.fixedLabels.map { try NIfTI.read($0) }
        let movingLabels = try files.movingLabels.map { try NIfTI.read($0) }
        return try RegistrationPair(
            fixed: fixed, moving: moving, fixedLabels: fixedLabels, movingLabels: movingLabels, files: files)
    }

    /// The same checks and resampling for volumes already in memory; `files` names them in errors.
    public init(
        fixed: Volume, moving: Volume, fixedLabels: Volume? = nil, movingLabels: Volume? = nil,
        files: RegistrationPairFiles
    ) throws {
        try Self.checkImage(fixed, path: files.fixed)
        try Self.checkImage(moving, path: files.moving)
        guard fixed.is2D == moving.is2D else {
            throw MorphoTrainError.dimensionalityMismatch(fixed: files.fixed, moving: files.moving)
        }
        if let labels = fixedLabels {
            try Self.checkLabels(labels, path: files.fixedLabels ?? "<fixed labels>", image: fixed, imagePath: files.fixed)
        }
        if let labels = movingLabels {
            try Self.checkLabels(labels, path: files.movingLabels ?? "<moving labels>", image: moving, imagePath: files.moving)
        }
        self.files = files
        self.fixed = fixed
        self.fixedLabels = fixedLabels
        if moving.sameGrid(as: fixed) {
            self.moving = moving
            self.movingLabels = movingLabels
            self.overlap = 1
        } else {
            let (resampled, inside) = WorldResampling.resample(moving, onto: fixed, interpolation: .linear)
            guard inside > 0 else { throw MorphoTrainError.noOverlap(fixed: files.fixed, moving: files.moving) }
            self.moving = resampled
            self.movingLabels = movingLabels.map {
                WorldResampling.resample($0, onto: fixed, interpolation: .nearest).volume
            }
            self.overlap = Double(inside) / Double(fixed.spatialCount)
        }
    }

    static func checkImage(_ image: Volume, path: String) throws {
        guard image.channels == 1 else { throw MorphoTrainError.notSingleChannel(path: path, channels: image.channels) }
        try checkFiniteVoxels(image.data, path: path)
    }

    static func checkLabels(_ labels: Volume, path: String, image: Volume, imagePath: String) throws {
        try checkImage(labels, path: path)
        guard labels.sameGrid(as: image) else {
            throw MorphoTrainError.labelGridMismatch(
                labels: path, image: imagePath, labelShape: labels.spatialShape, imageShape: image.spatialShape)
        }
    }
}

extension Volume {
    /// The first channel as an image tensor `[1, 1, D, H, W]` (`[1, 1, H, W]` for 2D).
    var imageTensor: Tensor {
        let spatial = is2D ? [height, width] : [depth, height, width]
        return Tensor(shape: [1, 1] + spatial, data: Array(data.prefix(spatialCount)))
    }

    /// A single-channel volume with this one's geometry holding `tensor`'s values
    /// (`[1, 1, spatial…]` with this volume's spatial size).
    func replacingData(with tensor: Tensor) -> Volume {
        precondition(tensor.count == spatialCount, "tensor \(tensor.shape) does not fit grid \(spatialShape)")
        var out = Volume(
            data: tensor.scalars, channels: 1, depth: depth, height: height, width: width, spacing: spacing,
            affine: affine, header: header)
        out.header.dim = Array(header.dim.prefix(is2D ? 2 : 3))
        out.header.pixdim = Array(header.pixdim.prefix(is2D ? 2 : 3))
        out.header.intentCode = 0
        out.header.intentName = ""
        return out
    }
}
