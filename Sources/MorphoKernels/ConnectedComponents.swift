/// Which neighbours touch: voxels sharing a face (6 in 3D, 4 in 2D) or also an edge or a corner
/// (26 in 3D, 8 in 2D). A 2D image is a `[1, H, W]` volume, so one rule gives both ranks.
public enum Connectivity: String, Sendable, CaseIterable {
    case face, full

    /// Offsets `(dz, dy, dx)` of the neighbours a raster scan (z, then y, then x) has already
    /// visited: the half of the neighbourhood before the voxel (3 of 6, 13 of 26).
    var backwardOffsets: [(Int, Int, Int)] {
        switch self {
        case .face: return [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]
        case .full:
            var out: [(Int, Int, Int)] = []
            for dz in -1...0 {
                for dy in -1...1 {
                    for dx in -1...1 where (dz, dy, dx) < (0, 0, 0) { out.append((dz, dy, dx)) }
                }
            }
            return out
        }
    }
}

/// The connected components of a binary mask.
public struct ConnectedComponents: Sendable {
    /// Per voxel (`[D, H, W]`, x fastest): 0 outside the mask, else its component `1...count`,
    /// numbered in raster order of each component's first voxel.
    public var labels: [Int32]
    /// `sizes[k - 1]` voxels in component `k`.
    public var sizes: [Int]

    public var count: Int { sizes.count }

    /// The component with the most voxels (the first in raster order among equals), or nil for an
    /// empty mask.
    public var largest: Int? {
        guard var best = sizes.indices.first else { return nil }
        for k in sizes.indices where sizes[k] > sizes[best] { best = k }
        return best + 1
    }

    /// Labels the components of `mask` (`[D, H, W]`, x fastest; `D = 1` for 2D) in two raster
    /// passes with union-find (Rosenfeld & Pfaltz 1966; Wu, Otoo & Suzuki 2009): the first gives
    /// each mask voxel the provisional label of an already visited neighbour, or a new one, and
    /// records which provisional labels meet; the second replaces each by its equivalence class.
    /// The union-find links the larger root under the smaller and halves paths while finding, so
    /// the work is linear in the voxels for all practical purposes (the inverse Ackermann factor).
    ///
    /// - Precondition: `mask.count == shape.reduce(1, *)`, `shape.count == 3`.
    public init(mask: [Bool], shape: [Int], connectivity: Connectivity) {
        precondition(shape.count == 3 && mask.count == shape[0] * shape[1] * shape[2], "mask must be [D, H, W]")
        let (d, h, w) = (shape[0], shape[1], shape[2])
        let offsets = connectivity.backwardOffsets
        // The same neighbours as flat index differences, for voxels away from the y/x borders
        // (the visited half never reaches z + 1; in the first plane only the dz = 0 ones exist).
        let flat = offsets.map { ($0.0 * h + $0.1) * w + $0.2 }
        let flatInPlane = offsets.filter { $0.0 == 0 }.map { $0.1 * w + $0.2 }
        var provisional = [Int32](repeating: 0, count: mask.count)
        // parent[k] for provisional label k (index 0 unused).
        var parent: [Int32] = [0]

        @inline(__always) func find(_ x: Int32, _ parent: inout [Int32]) -> Int32 {
            var x = x
            while parent[Int(x)] != x {
                parent[Int(x)] = parent[Int(parent[Int(x)])]  // path halving
                x = parent[Int(x)]
            }
            return x
        }

        provisional.withUnsafeMutableBufferPointer { labels in
            mask.withUnsafeBufferPointer { inside in
                for z in 0..<d {
                    for y in 0..<h {
                        let interiorRow = y > 0 && y < h - 1
                        let near = z > 0 ? flat : flatInPlane
                        for x in 0..<w {
                            let i = (z * h + y) * w + x
                            guard inside[i] else { continue }
                            var label: Int32 = 0
                            @inline(__always) func meet(_ n: Int32) {
                                guard n != 0 else { return }
                                if label == 0 {
                                    label = n
                                } else if n != label {
                                    let a = find(label, &parent), b = find(n, &parent)
                                    if a != b { parent[Int(max(a, b))] = min(a, b) }
                                }
                            }
                            if interiorRow && x > 0 && x < w - 1 {
                                for o in near { meet(labels[i + o]) }
                            } else {
                                for (dz, dy, dx) in offsets {
                                    let (nz, ny, nx) = (z + dz, y + dy, x + dx)
                                    guard nz >= 0, ny >= 0, ny < h, nx >= 0, nx < w else { continue }
                                    meet(labels[(nz * h + ny) * w + nx])
                                }
                            }
                            if label == 0 {
                                label = Int32(parent.count)
                                parent.append(label)
                            }
                            labels[i] = label
                        }
                    }
                }
            }
        }

        // Roots become 1...count in order of first appearance; every provisional label maps to
        // its root's number.
        var final = [Int32](repeating: 0, count: parent.count)
        var sizes: [Int] = []
        for k in 1..<parent.count {
            let root = Int(find(Int32(k), &parent))
            if root == k {
                // A root is its own first label: provisional labels are handed out in raster
                // order and unions keep the smaller, so numbering roots in label order numbers
                // components by their first voxel.
                sizes.append(0)
                final[root] = Int32(sizes.count)
            }
            final[k] = final[root]
        }
        provisional.withUnsafeMutableBufferPointer { labels in
            sizes.withUnsafeMutableBufferPointer { count in
                for i in labels.indices where labels[i] != 0 {
                    let k = final[Int(labels[i])]
                    labels[i] = k
                    count[Int(k) - 1] += 1
                }
            }
        }
        labels = provisional
        self.sizes = sizes
    }
}
