/// The larger of `a` and `b`, or NaN when either is NaN. Test comparisons accumulate their worst
/// error with this instead of `max`, which returns the other operand when one is NaN, so a single
/// NaN (an unwritten output, a 0/0 in a backward) can never pass as "error 0".
public func nanStrictMax(_ a: Double, _ b: Double) -> Double {
    a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
}

/// `nanStrictMax` for Float.
public func nanStrictMax(_ a: Float, _ b: Float) -> Float {
    a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
}
