/// Signed distance maps of every class of one label map, the one routine behind the boundary
/// loss's `signedDistanceMaps` (MorphoLosses) and the maps a segmentation subject keeps
/// (`Subject.signedDistances`, MorphoTrain): for class `k` in `0..<classes`,
/// `signedDistance(mask: labels == k, shape:, spacing:)` (mm, > 0 outside the class, ≤ 0 inside,
/// all 0 for a class that is absent or covers everything) is written at
/// `out[k · classStride ..< k · classStride + count]`, `count = shape.reduce(1, *)`.
///
/// - labels: `count` class indices in the layout of `shape` (last axis fastest); a value outside
///   `0..<classes` belongs to no class.
/// - shape, spacing: the image's spatial shape (1 to 3 axes) and voxel size per axis in mm (nil:
///   1 mm), as `signedDistance` takes them.
/// - classStride: the distance in `out` from one class's map to the next, at least `count`:
///   `count` for `[K, spatial...]` maps of one image; `D·H·W` when the image is slice `z` of a
///   `[K, D, H, W]` volume computed slice by slice (`out` then points at that slice of class 0).
/// - out: room for `(classes − 1) · classStride + count` floats; other positions are not touched.
public func classSignedDistances(
    labels: UnsafeBufferPointer<Int32>, classes: Int, shape: [Int], spacing: [Double]? = nil,
    classStride: Int, into out: UnsafeMutablePointer<Float>
) {
    let count = shape.reduce(1, *)
    precondition(labels.count == count, "classSignedDistances: \(labels.count) labels for shape \(shape)")
    precondition(classStride >= count, "classSignedDistances: class stride \(classStride) < \(count) voxels")
    var mask = [Bool](repeating: false, count: count)
    mask.withUnsafeMutableBufferPointer { m in
        for k in 0..<classes {
            let c = Int32(k)
            for v in 0..<count { m[v] = labels[v] == c }
            signedDistance(
                mask: UnsafeBufferPointer(m), shape: shape, spacing: spacing,
                into: UnsafeMutableBufferPointer(start: out + k * classStride, count: count))
        }
    }
}
