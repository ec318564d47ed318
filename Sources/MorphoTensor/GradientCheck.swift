/// Finite-difference verification of an operation's backward, used by the test suites of every
/// module. The function is evaluated in Float32 like the real code, so the check uses central
/// differences, sums the scalar output in Double, and compares with a tolerance relative to the
/// largest gradient entry. Inputs larger than `maxProbes` elements are checked on a random subset
/// of coordinates plus one random direction (a directional derivative over all of them).
public struct GradientCheckResult: CustomStringConvertible {
    public var maxAbsError: Double
    public var maxReference: Double
    public var worstInput: Int
    public var worstIndex: Int
    public var passed: Bool
    public var description: String {
        "gradient check \(passed ? "passed" : "FAILED"): max |analytic - numeric| = \(maxAbsError) (max |grad| \(maxReference)) at input \(worstInput) index \(worstIndex)"
    }
}

public enum GradientCheck {
    /// Compares `backward` of `f(inputs)` (reduced to a scalar through a fixed random cotangent
    /// when f returns a tensor) with central differences of step `h` on each input element.
    /// Passes when max |analytic − numeric| ≤ atol + rtol · max |analytic|.
    public static func check(
        _ inputs: [Tensor], h: Float = 1e-2, rtol: Double = 2e-2, atol: Double = 1e-4,
        maxProbes: Int = 400, seed: UInt64 = 7, _ f: ([Tensor]) -> Tensor
    ) -> GradientCheckResult {
        var rng = RandomGenerator(seed: seed)
        let leaves = inputs.map { $0.detached().requiringGrad() }
        let probe = f(leaves)
        let cotangent = probe.rank == 0 ? nil : Tensor.randomNormal(probe.shape, using: &rng)
        func scalar(_ y: Tensor) -> Double {
            guard let c = cotangent else { return Double(y.item) }
            var s = 0.0
            for i in 0..<y.count { s += Double(y[flat: i]) * Double(c[flat: i]) }
            return s
        }
        let out = cotangent.map { probe * $0 }?.sum() ?? probe
        out.backward()
        let analytic = leaves.map { $0.grad ?? Tensor.zeros(like: $0) }

        var worst = 0.0, ref = 0.0, wi = 0, wj = 0
        // NaN-strict: a NaN gradient entry or error is the worst there is and fails the check
        // (`max` and `>` would silently drop it).
        func isWorse(_ a: Double, than b: Double) -> Bool { !b.isNaN && (a.isNaN || a > b) }
        for g in analytic { for i in 0..<g.count { let v = Double(Swift.abs(g[flat: i])); if isWorse(v, than: ref) { ref = v } } }
        func evaluate(_ k: Int, _ edit: (inout Tensor) -> Void) -> Double {
            var xs = inputs.map { $0.detached() }
            edit(&xs[k])
            return withoutGradients { scalar(f(xs)) }
        }
        for (k, x) in inputs.enumerated() {
            var indices = Array(0..<x.count)
            if x.count > maxProbes {
                var picked = Set<Int>()
                while picked.count < maxProbes { picked.insert(Int(rng.next() % UInt64(x.count))) }
                indices = Array(picked)
            }
            for i in indices {
                let plus = evaluate(k) { t in t.withUnsafeMutablePointer { $0[i] += h } }
                let minus = evaluate(k) { t in t.withUnsafeMutablePointer { $0[i] -= h } }
                let numeric = (plus - minus) / (2 * Double(h))
                let err = Swift.abs(numeric - Double(analytic[k][flat: i]))
                if isWorse(err, than: worst) { worst = err; wi = k; wj = i }
            }
            if x.count > maxProbes {
                // One directional derivative through every element of this input.
                let dir = Tensor.randomNormal(x.shape, using: &rng)
                let plus = evaluate(k) { t in t.withUnsafeMutablePointer { p in for i in 0..<x.count { p[i] += h * dir[flat: i] } } }
                let minus = evaluate(k) { t in t.withUnsafeMutablePointer { p in for i in 0..<x.count { p[i] -= h * dir[flat: i] } } }
                let numeric = (plus - minus) / (2 * Double(h))
                var exact = 0.0
                for i in 0..<x.count { exact += Double(analytic[k][flat: i]) * Double(dir[flat: i]) }
                let scale = (0..<x.count).reduce(0.0) { $0 + Double(Swift.abs(dir[flat: $1])) } / Double(x.count)
                let err = Swift.abs(numeric - exact) / max(scale * Double(x.count).squareRoot(), 1)
                if isWorse(err, than: worst) { worst = err; wi = k; wj = -1 }
            }
        }
        return GradientCheckResult(maxAbsError: worst, maxReference: ref, worstInput: wi, worstIndex: wj,
                                   passed: worst <= atol + rtol * ref)
    }
}
