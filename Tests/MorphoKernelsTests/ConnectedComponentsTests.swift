import MorphoKernels
import XCTest

/// Connected components against a brute-force labelling on random small masks, in 2D and 3D, for
/// both connectivities.
final class ConnectedComponentsTests: XCTestCase {
    /// The reference: every mask voxel starts with its own index; each sweep lowers it to the
    /// smallest index among its neighbours (all of them, not only the visited half) until
    /// nothing changes, so a component ends with the index of its first voxel in raster order.
    /// Components are then numbered 1, 2, … in that order, as `ConnectedComponents` numbers them.
    func bruteForce(_ mask: [Bool], shape: [Int], connectivity: Connectivity) -> [Int32] {
        let (d, h, w) = (shape[0], shape[1], shape[2])
        var label = mask.indices.map { mask[$0] ? $0 : -1 }
        var changed = true
        while changed {
            changed = false
            for z in 0..<d { for y in 0..<h { for x in 0..<w {
                let i = (z * h + y) * w + x
                guard mask[i] else { continue }
                for dz in -1...1 { for dy in -1...1 { for dx in -1...1 {
                    let steps = abs(dz) + abs(dy) + abs(dx)
                    guard steps > 0, connectivity == .full || steps == 1 else { continue }
                    let (nz, ny, nx) = (z + dz, y + dy, x + dx)
                    guard nz >= 0, nz < d, ny >= 0, ny < h, nx >= 0, nx < w else { continue }
                    let n = (nz * h + ny) * w + nx
                    if mask[n] && label[n] < label[i] { label[i] = label[n]; changed = true }
                } } }
            } } }
        }
        var number: [Int: Int32] = [:]
        return label.map { l in
            guard l >= 0 else { return 0 }
            if let k = number[l] { return k }
            let k = Int32(number.count + 1)
            number[l] = k
            return k
        }
    }

    func testComponentsMatchBruteForceOnRandomMasks() {
        var rng = SeededGenerator(seed: 11)
        let shapes = [[1, 9, 11], [1, 1, 17], [5, 6, 7], [4, 8, 3], [2, 2, 2]]
        var checked = 0
        for shape in shapes {
            for density in [0.2, 0.45, 0.6, 0.9] {
                for connectivity in Connectivity.allCases {
                    for _ in 0..<4 {
                        let mask = (0..<shape.reduce(1, *)).map { _ in Double.random(in: 0..<1, using: &rng) < density }
                        let c = ConnectedComponents(mask: mask, shape: shape, connectivity: connectivity)
                        let reference = bruteForce(mask, shape: shape, connectivity: connectivity)
                        XCTAssertEqual(c.labels, reference, "\(shape) \(connectivity) density \(density)")
                        var sizes = [Int](repeating: 0, count: Int(reference.max() ?? 0))
                        for k in reference where k > 0 { sizes[Int(k) - 1] += 1 }
                        XCTAssertEqual(c.sizes, sizes)
                        checked += 1
                    }
                }
            }
        }
        XCTAssertEqual(checked, 160)
    }

    func testFaceConnectivityKeepsDiagonalNeighboursApart() {
        // 2D checkerboard corner: (0,0) and (1,1) touch by a corner only.
        let mask = [true, false, false, true]
        XCTAssertEqual(ConnectedComponents(mask: mask, shape: [1, 2, 2], connectivity: .face).count, 2)
        XCTAssertEqual(ConnectedComponents(mask: mask, shape: [1, 2, 2], connectivity: .full).count, 1)
        // 3D: voxels (0,0,0) and (1,1,1) share a corner only.
        var cube = [Bool](repeating: false, count: 8)
        cube[0] = true
        cube[7] = true
        XCTAssertEqual(ConnectedComponents(mask: cube, shape: [2, 2, 2], connectivity: .face).count, 2)
        XCTAssertEqual(ConnectedComponents(mask: cube, shape: [2, 2, 2], connectivity: .full).count, 1)
    }

    func testLargestIsTheBiggestComponentAndNilOnAnEmptyMask() {
        // Row: ■ □ ■ ■ ■ □ ■ ■
        let mask = [true, false, true, true, true, false, true, true]
        let c = ConnectedComponents(mask: mask, shape: [1, 1, 8], connectivity: .face)
        XCTAssertEqual(c.labels, [1, 0, 2, 2, 2, 0, 3, 3])
        XCTAssertEqual(c.sizes, [1, 3, 2])
        XCTAssertEqual(c.largest, 2)
        XCTAssertNil(ConnectedComponents(mask: [false, false], shape: [1, 1, 2], connectivity: .full).largest)
    }

    /// A U shape whose arms meet only at the bottom: the first pass gives the arms two labels that
    /// the union-find must merge.
    func testArmsThatMeetLaterAreOneComponent() {
        let rows = ["#..#", "#..#", "####"]
        let mask = rows.flatMap { $0.map { $0 == "#" } }
        let c = ConnectedComponents(mask: mask, shape: [1, 3, 4], connectivity: .face)
        XCTAssertEqual(c.count, 1)
        XCTAssertEqual(c.sizes, [8])
    }
}
