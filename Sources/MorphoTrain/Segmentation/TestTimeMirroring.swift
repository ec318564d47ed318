/// Test-time augmentation by mirroring (nnU-Net's default at inference): the class probabilities
/// are predicted for the image mirrored along every subset of the given axes (8 passes for the
/// three axes of a 3D network, 4 for the two in-plane axes of a 2D one), each result is mirrored
/// back onto the original voxels, and the results are averaged.
///
/// Since the mirrorings form a group, the averaged prediction is exactly mirror-equivariant:
/// predicting a mirrored image gives the mirrored prediction, whatever the network.
public enum TestTimeMirroring {
    /// The axes mirrored for a network of `dims` in the `[D, H, W]` layout: all three in 3D, the
    /// in-plane `H` and `W` in 2D (`D` runs over slices there).
    public static func axes(dims: Int) -> [Int] { dims == 3 ? [0, 1, 2] : [1, 2] }

    /// Mean of `predict` over the mirrorings of `image` (`[C, D, H, W]`) along subsets of `axes`,
    /// each result (`[K, D, H, W]`) mirrored back. `predict` is called `2^axes.count` times, first
    /// on the image as it is.
    public static func probabilities(
        _ image: VoxelArray, axes: [Int], predict: (VoxelArray) -> VoxelArray
    ) -> VoxelArray {
        var mean: VoxelArray?
        let passes = 1 << axes.count
        for subset in 0..<passes {
            let mirrored = axes.indices.filter { subset & (1 << $0) != 0 }.map { axes[$0] }
            var input = image
            for a in mirrored { input.flip(axis: a) }
            var p = predict(input)
            for a in mirrored { p.flip(axis: a) }
            if mean == nil {
                mean = p
            } else {
                mean!.data.withUnsafeMutableBufferPointer { m in
                    for i in m.indices { m[i] += p.data[i] }
                }
            }
        }
        let scale = 1 / Float(passes)
        mean!.data.withUnsafeMutableBufferPointer { m in
            for i in m.indices { m[i] *= scale }
        }
        return mean!
    }
}
