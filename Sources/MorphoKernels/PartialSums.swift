/// How a weight gradient splits its work items (tiles, or runs of tile blocks) into groups with
/// their own running sums: balanced like first-come-first-served tiles, and reproducible bit
/// for bit.
///
/// Each group is a contiguous run of items summed in order into its own `[taps][channels]`
/// sums; workers claim whole groups from a `TileQueue`, and the groups' sums are added in
/// group order at the end. So the result depends on the thread count (through `groups`) but
/// never on which thread ran which group or when: a resumed run on as many threads continues
/// the same curve. With exactly one group per worker (what the kernels did before), a worker
/// slowed by another process, or handed the costlier half, held the call up: 4–5 % of a 96³
/// segmentation step went to the other thread waiting at the end of weight-gradient calls.
///
/// More groups cost one more read of the sums each in the reduction, so a call gets up to
/// 4 groups per worker only while those reads stay within ~2 % of its multiply-adds, and
/// extra groups' sums within `extraBytes`.
struct PartialSums {
    /// Number of groups, each with its own sums.
    let groups: Int
    /// Work items, split into `groups` contiguous runs.
    let items: Int

    /// - Parameters:
    ///   - items: work items to split (≥ 1).
    ///   - workers: threads that will claim groups.
    ///   - flops: multiply-add FLOPs of the whole call.
    ///   - floatsPerGroup: the size of one group's sums, in floats.
    init(items: Int, workers: Int, flops: Double, floatsPerGroup: Int) {
        self.items = items
        // A float read in the reduction costs about as much time as 50 FLOPs of a kernel
        // running near peak (≈ 6 GB/s per core against ≈ 170 GFLOP/s per core).
        let affordable = Int(0.02 * flops / (50 * Double(Swift.max(1, floatsPerGroup))))
        groups = Swift.max(1, Swift.min(items, workers + Swift.min(affordable, Self.mostExtraGroups(workers: workers, floatsPerGroup: floatsPerGroup))))
    }

    /// Bound on the sums of the groups beyond one per worker, in bytes.
    static let extraBytes = 8 << 20

    /// The most groups beyond one per worker: 3 per worker, as far as `extraBytes` allows.
    static func mostExtraGroups(workers: Int, floatsPerGroup: Int) -> Int {
        Swift.min(3 * workers, extraBytes / (4 * Swift.max(1, floatsPerGroup)))
    }

    /// The items of group `g`, in the order they are summed.
    func range(_ g: Int) -> Range<Int> {
        (g * items / groups)..<((g + 1) * items / groups)
    }

    /// Adds groups 1 ..< `groups` into group 0, element by element in group order, on all
    /// threads: `sums[i] = Σ_g sums[g · floatsPerGroup + i]`.
    func reduce(_ sums: UnsafeMutablePointer<Float>, floatsPerGroup: Int) {
        guard groups > 1 else { return }
        Parallel.forRanges(floatsPerGroup, grain: 16384) { r in
            for g in 1..<groups {
                let other = sums + g * floatsPerGroup
                for i in r { sums[i] += other[i] }
            }
        }
    }
}
