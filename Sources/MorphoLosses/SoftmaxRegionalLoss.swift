import MorphoKernels
import MorphoTensor

// The fused kernel behind the soft Dice, Dice + CE, cross-entropy and class-balanced CE losses
// (Dice.swift, CrossEntropy.swift). All of them start from softmax over the channels of the
// logits and per-(item, class) sums against the one-hot labels; doing it in one vectorised pass
// over the voxels (16 at a time, vector exp/log), with the backward written out, keeps a 2×128³
// Dice-CE step at a few milliseconds instead of the dozen full-size temporaries a composed
// version allocates.

/// Which regional terms to evaluate, and their weights.
struct RegionalTerms {
    /// Weight of the soft Dice term (0: not evaluated).
    var lambdaDice: Float = 0
    var includeBackground = true
    var smoothNumerator: Double = 1e-5
    var smoothDenominator: Double = 1e-5
    /// Weight of the cross-entropy term (0: not evaluated).
    var lambdaCE: Float = 0
    /// Per-class CE weights (PyTorch `CrossEntropyLoss(weight:)`); nil: unweighted mean.
    var classWeights: [Float]? = nil
}

/// `λ_dice · SoftDice(softmax(logits), onehot(labels)) + λ_ce · CE(logits, labels)`.
///
/// - Soft Dice (MONAI `DiceLoss(softmax=True, to_onehot_y=True)`, `batch=False`): for every item n
///   and class c, `1 − (2·Σ p·g + smooth_nr) / (Σ p + Σ g + smooth_dr)` over the voxels, then the
///   mean over n and the kept classes (channel 0 dropped without background).
/// - CE: `Σ w_y · (−log p_y) / Σ w_y` over all voxels of all items (w ≡ 1: plain mean).
///
/// logits `[N, C, spatial...]`, labels `[N, spatial...]` or `[N, 1, spatial...]` of class indices.
func softmaxRegionalLoss(logits: Tensor, labels: Tensor, terms: RegionalTerms, _ what: String) -> Tensor {
    logits.preconditionImage(what)
    let n = logits.shape[0], c = logits.shape[1], s = logits.spatialCount
    precondition(c >= 1, "\(what): logits need at least one channel")
    preconditionClassIndices(labels, items: n, spatial: s, classes: c, what)
    if let w = terms.classWeights { precondition(w.count == c, "\(what): \(w.count) class weights for \(c) classes") }
    let weights = terms.classWeights ?? Array(repeating: 1, count: c)
    let doDice = terms.lambdaDice != 0, doCE = terms.lambdaCE != 0

    // Forward: softmax into `probs`, and per item the sums [Σp·g (c), Σp (c), Σg (c), Σw·ce, Σw].
    let width = 3 * c + 2
    var stats: [Double] = []
    let probs = Tensor(shape: logits.shape) { out in
        let x = logits.storage.pointer, lab = labels.storage.pointer
        stats = weights.withUnsafeBufferPointer { wb in
            let wt = wb.baseAddress!
            return blockSums(items: n, spatial: s, width: width) { item, range, acc in
                let v = UnsafeMutablePointer<Lanes>.allocate(capacity: width)
                defer { v.deallocate() }
                v.initialize(repeating: Lanes(), count: width)
                let base = item * c * s
                var j = range.lowerBound
                while j < range.upperBound {
                    let count = min(16, range.upperBound - j), full = count == 16
                    @inline(__always) func logit(_ k: Int) -> Lanes {
                        full ? loadLanes(x + base + k * s + j) : loadLanes(x + base + k * s + j, count: count)
                    }
                    // Padding lanes get label −1: no class, no CE weight.
                    let t = full ? loadLanes(lab + item * s + j) : loadLanes(lab + item * s + j, count: count, fill: -1)
                    var m = logit(0)
                    for k in 1..<max(c, 1) { let xk = logit(k); m.replace(with: xk, where: xk .> m) }
                    var total = Lanes()
                    var xt = Lanes(), wtLanes = Lanes()
                    for k in 0..<c {
                        let xk = logit(k)
                        let e = vexp(xk - m)
                        total += e
                        if full { storeLanes(e, out + base + k * s + j) } else { storeLanes(e, out + base + k * s + j, count: count) }
                        let isK = t .== Float(k)
                        xt.replace(with: xk, where: isK)
                        wtLanes.replace(with: wt[k], where: isK)
                    }
                    let inv = 1 / total
                    for k in 0..<c {
                        let p = (full ? loadLanes(out + base + k * s + j) : loadLanes(out + base + k * s + j, count: count)) * inv
                        if full { storeLanes(p, out + base + k * s + j) } else { storeLanes(p, out + base + k * s + j, count: count) }
                        let isK = t .== Float(k)
                        v[k] += p.replacing(with: 0, where: .!isK)
                        v[c + k] += full ? p : p.replacing(with: 0, where: .!laneMask(count: count))
                        v[2 * c + k] += Lanes(repeating: 1).replacing(with: 0, where: .!isK)
                    }
                    let ce = vlog(total) + m - xt
                    v[3 * c] += wtLanes * ce
                    v[3 * c + 1] += wtLanes
                    j += 16
                }
                for k in 0..<width { acc[k] = laneSum(v[k]) }
            }
        }
    }

    // Dice per (item, class) and the coefficients of its derivative with respect to p:
    // d f / d p = a · g + b with a = −2/(D + sd), b = (2I + sn)/(D + sd)², D = Σp + Σg.
    let first = terms.includeBackground ? 0 : 1
    let kept = c - first
    var diceA = [Float](repeating: 0, count: n * c), diceB = [Float](repeating: 0, count: n * c)
    var total = 0.0
    if doDice {
        precondition(kept > 0, "\(what): no class left once the background is excluded")
        var diceSum = 0.0
        for item in 0..<n {
            for k in first..<c {
                let inter = stats[item * width + k], pred = stats[item * width + c + k], truth = stats[item * width + 2 * c + k]
                let den = pred + truth + terms.smoothDenominator
                let num = 2 * inter + terms.smoothNumerator
                diceSum += 1 - num / den
                let scale = 1 / Double(n * kept)
                diceA[item * c + k] = Float(-2 / den * scale)
                diceB[item * c + k] = Float(num / (den * den) * scale)
            }
        }
        total += Double(terms.lambdaDice) * diceSum / Double(n * kept)
    }
    var ceNormaliser = 0.0
    if doCE {
        var ceSum = 0.0, wSum = 0.0
        for item in 0..<n { ceSum += stats[item * width + 3 * c]; wSum += stats[item * width + 3 * c + 1] }
        total += Double(terms.lambdaCE) * ceSum / wSum
        ceNormaliser = 1 / wSum
    }

    let value = Tensor(scalar: Float(total))
    return Tensor.record(value, inputs: [logits]) { g in
        let up = g.item
        let dScale = up * terms.lambdaDice, ceScale = Float(Double(up * terms.lambdaCE) * ceNormaliser)
        let grad = Tensor(shape: logits.shape) { dx in
            let p = probs.storage.pointer, lab = labels.storage.pointer
            weights.withUnsafeBufferPointer { wb in
                diceA.withUnsafeBufferPointer { ab in
                    diceB.withUnsafeBufferPointer { bb in
                        let wt = wb.baseAddress!, a = ab.baseAddress!, b = bb.baseAddress!
                        forEachBlock(items: n, spatial: s) { item, range in
                            let base = item * c * s
                            var j = range.lowerBound
                            while j < range.upperBound {
                                let count = min(16, range.upperBound - j), full = count == 16
                                @inline(__always) func prob(_ k: Int) -> Lanes {
                                    full ? loadLanes(p + base + k * s + j) : loadLanes(p + base + k * s + j, count: count)
                                }
                                let t = full ? loadLanes(lab + item * s + j) : loadLanes(lab + item * s + j, count: count, fill: -1)
                                // Dice: gp_k = a_k·[t == k] + b_k, then through the softmax Jacobian.
                                @inline(__always) func gp(_ k: Int) -> Lanes {
                                    Lanes(repeating: b[item * c + k]).replacing(with: a[item * c + k] + b[item * c + k], where: t .== Float(k))
                                }
                                var dot = Lanes()
                                var ce = Lanes()
                                for k in 0..<c {
                                    if doDice { dot += gp(k) * prob(k) }
                                    ce.replace(with: ceScale * wt[k], where: t .== Float(k))
                                }
                                for k in 0..<c {
                                    let pk = prob(k)
                                    var d = ce * (pk - Lanes(repeating: 1).replacing(with: 0, where: t .!= Float(k)))
                                    if doDice { d += dScale * pk * (gp(k) - dot) }
                                    if full { storeLanes(d, dx + base + k * s + j) } else { storeLanes(d, dx + base + k * s + j, count: count) }
                                }
                                j += 16
                            }
                        }
                    }
                }
            }
        }
        return [grad]
    }
}
