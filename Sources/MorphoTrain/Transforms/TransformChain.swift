import MorphoIO
import MorphoKernels

/// A list of transforms in `antsApplyTransforms` order, and the point mapping it defines.
///
/// **Order.** As ANTs prints a registration's result (`-t 1Warp.nii.gz -t 0GenericAffine.mat`),
/// the image is moved by the last listed transform first; for a point of the reference space it
/// is the other way round: the first listed transform acts on the reference point first, its
/// result goes to the second, and so on, and the last result is the point sampled in the input:
///
///     moving(x) = T_last(… T_2(T_1(x)))
///
/// (ITK's composite transform with the list pushed last-to-first). So for ANTs' pair,
/// `x ↦ Affine(x + u(x))`: the warp lives on the fixed grid and the affine carries its result
/// into the moving image.
public struct TransformChain: Sendable {
    public var transforms: [PointTransform]

    public init(_ transforms: [PointTransform]) { self.transforms = transforms }

    /// Loads `-t` arguments (see `PointTransform.load`); `inverted` holds 0-based positions in
    /// `arguments` to invert (`--invert N`). A displacement field with NaN or infinite components
    /// is refused unless `nanAs` (`--nan-as V`) gives them a value.
    public static func load(_ arguments: [String], inverted: Set<Int> = [], nanAs: Float? = nil) throws -> TransformChain {
        TransformChain(try arguments.enumerated().map { position, argument in
            let transform = try PointTransform.load(argument, invert: inverted.contains(position))
            guard case .field(let field) = transform else { return transform }
            return .field(try field.replacingNonFiniteComponents(with: nanAs, path: try PointTransform.argumentParts(argument).path))
        })
    }

    /// The LPS positions (mm) of the voxel centres of `grid`: `[3, count]` channel-major.
    static func gridPoints(_ grid: Volume) -> [Double] {
        let count = grid.spatialCount
        let (nx, ny) = (grid.width, grid.height)
        let m = PointMatrix(ITKAffineTransform.flip * grid.affine)
        var points = [Double](repeating: 0, count: 3 * count)
        points.withUnsafeMutableBufferPointer { buffer in
            let p = buffer.baseAddress!
            Parallel.forRanges(grid.depth * ny, grain: 16) { rows in
                for row in rows {
                    let k = Double(row / ny), j = Double(row % ny)
                    for i in 0..<nx {
                        let v = row * nx + i
                        (p[v], p[count + v], p[2 * count + v]) = m.apply(Double(i), j, k)
                    }
                }
            }
        }
        return points
    }

    /// For every voxel of `grid`, the matching moving point (LPS mm), `[3, count]`.
    public func movingPoints(on grid: Volume) -> [Double] {
        var points = Self.gridPoints(grid)
        let count = grid.spatialCount
        points.withUnsafeMutableBufferPointer { buffer in
            let p = buffer.baseAddress!
            for (position, transform) in transforms.enumerated() {
                // The common case (ANTs' `-t Warp -t Affine`): a field on the reference grid acts
                // first, at its own voxel centres, where interpolating it reads one voxel.
                if position == 0, case .field(let f) = transform, f.volume.sameGrid(as: grid, tolerance: 1e-6) {
                    Self.addAtVoxelCentres(f, to: p, count: count)
                    continue
                }
                switch transform {
                case .affine(let a):
                    let m = PointMatrix(a.lpsMatrix)
                    Parallel.forRanges(count, grain: 8192) { range in
                        for v in range {
                            (p[v], p[count + v], p[2 * count + v]) = m.apply(p[v], p[count + v], p[2 * count + v])
                        }
                    }
                case .field(let f):
                    FieldSampling.displace(p, count: count, by: f)
                }
            }
        }
        return points
    }

    /// `points[:, v] += u[:, v]`: a field's displacement at its own voxel centres (a 2D field
    /// leaves z alone).
    static func addAtVoxelCentres(_ field: ITKDisplacementField, to p: UnsafeMutablePointer<Double>, count: Int) {
        let components = field.volume.channels
        field.volume.data.withUnsafeBufferPointer { buffer in
            let u = buffer.baseAddress!
            Parallel.forRanges(components * count, grain: 32768) { range in
                for i in range { p[i] += Double(u[i]) }
            }
        }
    }

    /// The whole chain as one displacement field on `grid` (ITK convention, LPS mm):
    /// `u(x) = moving(x) − x` at each voxel centre `x`.
    public func displacementField(on grid: Volume) -> ITKDisplacementField {
        let moving = movingPoints(on: grid)
        let fixed = Self.gridPoints(grid)
        let count = grid.spatialCount
        let d = grid.is2D ? 2 : 3
        var data = [Float](repeating: 0, count: d * count)
        for i in 0..<d * count { data[i] = Float(moving[i] - fixed[i]) }
        var field = ITKDisplacementField.zero(on: grid)
        field.volume.data = data
        return field
    }
}
