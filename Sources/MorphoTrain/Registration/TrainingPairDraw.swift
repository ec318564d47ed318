import MorphoTensor

extension RegistrationDataset {
    /// What training pair k of a batch is made from, chosen before any image is built.
    enum PairSource {
        /// A synthetic deformation of this training image (`synthetic` pairs).
        case synthetic(RegistrationImage)
        /// Two training images (`random`) or one of the listed pairs (`atlas`, `listed`).
        case pair(PreparedPair)
    }

    /// The source of training pair `k` of batch `step` in the epoch stream `seed`, drawn from the
    /// pair's own generator `(seed, step, k)` — so that any split of the global batch over ranks
    /// draws the same pairs — and that generator after the choice (a synthetic pair draws its
    /// field from it).
    func pairSource(seed: UInt64, step: Int, k: Int) -> (source: PairSource, rng: RandomGenerator) {
        var rng = SeedStream.generator(seed: seed, step, k)
        switch mode {
        case .synthetic:
            return (.synthetic(images[Int(rng.next() % UInt64(images.count))]), rng)
        case .random:
            let count = UInt64(images.count)
            let i = Int(rng.next() % count)
            var j = Int(rng.next() % (count - 1))
            if j >= i { j += 1 }
            return (.pair(PreparedPair(fixed: images[i], moving: images[j])), rng)
        case .atlas, .listed:
            return (.pair(pairs[Int(rng.next() % UInt64(pairs.count))]), rng)
        }
    }

    /// Training pair `k` of batch `step` (see `pairSource`); a synthetic pair is deformed by a
    /// smooth random `field` here.
    func trainingPair(seed: UInt64, step: Int, k: Int, field: SmoothRandomField) -> PreparedPair {
        var (source, rng) = pairSource(seed: seed, step: step, k: k)
        switch source {
        case .synthetic(let x): return synthesize(x, field: field, rng: &rng)
        case .pair(let pair): return pair
        }
    }

    /// Whether the moving and fixed images of `trainingPair(seed:step:k:)` carry label maps,
    /// from the same draw but without building any image (a synthetic pair is labelled when its
    /// source image is).
    func trainingPairLabels(seed: UInt64, step: Int, k: Int) -> (moving: Bool, fixed: Bool) {
        switch pairSource(seed: seed, step: step, k: k).source {
        case .synthetic(let x): return (x.labels != nil, x.labels != nil)
        case .pair(let pair): return (pair.moving.labels != nil, pair.fixed.labels != nil)
        }
    }
}
