import MorphoIO
import MorphoTensor

/// The fixed and moving images (and masks) of the linear stages at every resolution, coarse to
/// fine: level l shrinks both images by `shrinkFactors[l]` after Gaussian smoothing of
/// `smoothingSigmas[l]` voxels (of each image's own grid), ANTs' `--shrink-factors 4x2x1
/// --smoothing-sigmas 2x1x0vox`. A shrink factor is capped so that the level keeps at least 16
/// voxels along the fixed image's shortest axis (a 4 mm brain is not registered on 16 mm
/// voxels). Masks are shrunk without smoothing and read as inside where their interpolated value
/// is ≥ 0.5.
struct LinearPyramid: @unchecked Sendable {
    struct Level {
        var fixed: LinearPyramidLevel
        var moving: LinearPyramidLevel
        var fixedMask: LinearPyramidLevel?
        var movingMask: LinearPyramidLevel?
    }

    var levels: [Level]

    /// - Parameters: images `[1, 1, spatial…]` (intensities normalised alike) with their
    ///   voxel → world affines; masks on their image's grid (nonzero = inside).
    init(
        fixed: Tensor, fixedAffine: Affine, moving: Tensor, movingAffine: Affine, fixedMask: Tensor?, movingMask: Tensor?,
        shrinkFactors: [Int], smoothingSigmas: [Double]
    ) {
        func binary(_ mask: Tensor) -> Tensor { Tensor(shape: mask.shape, data: mask.scalars.map { $0 != 0 ? 1 : 0 }) }
        let fixedBinary = fixedMask.map(binary), movingBinary = movingMask.map(binary)
        let shortest = fixed.spatialShape.filter { $0 > 1 }.min() ?? 1
        levels = zip(shrinkFactors.map { min($0, max(1, shortest / 16)) }, smoothingSigmas).map { shrink, sigma in
            Level(
                fixed: LinearPyramidLevel(image: fixed, affine: fixedAffine, shrink: shrink, sigma: sigma),
                moving: LinearPyramidLevel(image: moving, affine: movingAffine, shrink: shrink, sigma: sigma),
                fixedMask: fixedBinary.map { LinearPyramidLevel(image: $0, affine: fixedAffine, shrink: shrink, sigma: 0) },
                movingMask: movingBinary.map { LinearPyramidLevel(image: $0, affine: movingAffine, shrink: shrink, sigma: 0) })
        }
    }
}
