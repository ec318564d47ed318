import MorphoIO
import MorphoKernels

/// How `morphoseg apply` reads the input between voxel centres (ANTs' interpolator names in
/// brackets).
public enum Interpolation: String, CaseIterable, Sendable {
    /// Trilinear (bilinear in 2D) [Linear]: intensities.
    case linear
    /// The nearest voxel, halves rounded up [NearestNeighbor]: labels, blocky edges.
    case nearest
    /// Per-label linear resampling, then the most likely label at each voxel [GenericLabel]:
    /// labels stay labels and their edges stay smooth. Each label's indicator image is
    /// interpolated linearly; the output is the label with the largest value (ties to the
    /// smaller label). Computed from the eight corners directly: a label's interpolated
    /// indicator is the sum of the weights of the corners holding it.
    case label
}

/// Samples an image at arbitrary physical points, ANTs' way (ITK's `ResampleImageFilter`): the
/// point's continuous voxel index in the input; points more than half a voxel outside the
/// outermost voxel centres get the default value; inside, neighbours past the border are
/// clamped onto it.
enum PointSampling {
    /// `input` (every channel) at `points` (`[3, count]`, LPS mm), into `[channels, count]`.
    /// A 2D input is sampled in its plane (the points' z is ignored).
    static func sample(
        _ input: Volume, at points: [Double], count: Int, interpolation: Interpolation, fill: Float
    ) -> [Float] {
        let (nx, ny, nz) = (input.width, input.height, input.depth)
        let n = input.spatialCount
        let channels = input.channels
        let planar = input.is2D
        let m = PointMatrix(input.affine.inverse * ITKAffineTransform.flip)
        var out = [Float](repeating: fill, count: channels * count)
        input.data.withUnsafeBufferPointer { srcBuffer in
            points.withUnsafeBufferPointer { pointBuffer in
                out.withUnsafeMutableBufferPointer { outBuffer in
                    let src = srcBuffer.baseAddress!, p = pointBuffer.baseAddress!, dst = outBuffer.baseAddress!
                    Parallel.forRanges(count, grain: 4096) { range in
                        // Scratch for the label vote, once per range.
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { labels in
                            withUnsafeTemporaryAllocation(of: Double.self, capacity: 16) { votes in
                                for v in range {
                                    let (qx, qy, qz) = m.apply(p[v], p[count + v], p[2 * count + v])
                                    guard let c = LinearCorners(qx, qy, planar ? 0 : qz, nx, ny, nz) else { continue }
                                    switch interpolation {
                                    case .linear:
                                        for ch in 0..<channels {
                                            dst[ch * count + v] = Float(c.interpolate(src + ch * n, nx, ny))
                                        }
                                    case .nearest:
                                        let ix = min(Int((qx + 0.5).rounded(.down)), nx - 1)
                                        let iy = min(Int((qy + 0.5).rounded(.down)), ny - 1)
                                        let iz = planar ? 0 : min(Int((qz + 0.5).rounded(.down)), nz - 1)
                                        let at = (max(iz, 0) * ny + max(iy, 0)) * nx + max(ix, 0)
                                        for ch in 0..<channels { dst[ch * count + v] = src[ch * n + at] }
                                    case .label:
                                        for ch in 0..<channels {
                                            dst[ch * count + v] = vote(
                                                src + ch * n, c, nx, ny, labels.baseAddress!, votes.baseAddress!)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The label with the largest summed corner weight (ties to the smaller label).
    @inline(__always)
    static func vote(
        _ p: UnsafePointer<Float>, _ c: LinearCorners, _ nx: Int, _ ny: Int,
        _ labels: UnsafeMutablePointer<Float>, _ votes: UnsafeMutablePointer<Double>
    ) -> Float {
        // labels[8..<16] and votes[8..<16] hold the corners; labels[0..<distinct] and
        // votes[0..<distinct] the distinct labels and their summed weights.
        let o = c.offsets(nx, ny)
        let w = c.weights
        (labels[8], labels[9], labels[10], labels[11]) = (p[o.0], p[o.1], p[o.2], p[o.3])
        (labels[12], labels[13], labels[14], labels[15]) = (p[o.4], p[o.5], p[o.6], p[o.7])
        (votes[8], votes[9], votes[10], votes[11], votes[12], votes[13], votes[14], votes[15]) = w
        var distinct = 0
        for corner in 8..<16 {
            let value = labels[corner], weight = votes[corner]
            var j = 0
            while j < distinct && labels[j] != value { j += 1 }
            if j == distinct {
                labels[j] = value
                votes[j] = weight
                distinct += 1
            } else {
                votes[j] += weight
            }
        }
        var best = labels[0], bestVote = votes[0]
        for j in 1..<distinct where votes[j] > bestVote || (votes[j] == bestVote && labels[j] < best) {
            best = labels[j]
            bestVote = votes[j]
        }
        return best
    }
}
