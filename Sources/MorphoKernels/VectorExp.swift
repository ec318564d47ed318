// Vector e^x and ln x over 16 float lanes: libm's expf/logf are scalar calls and would
// dominate a softmax or a cross-entropy over 128³ voxels. Inlinable, so the loss and tensor
// modules' loops inline them.

// Float ↔ integer conversions of SIMD vectors and `clamped`/`pointwiseMax` are generic,
// lane-by-lane library calls in Swift; the functions below use selects and the 1.5·2²³
// "magic number" instead (adding it rounds a float to an integer held in the low mantissa
// bits), which compile to plain vector instructions.
@usableFromInline let vectorMathMagic: Float = 12_582_912      // 1.5 · 2^23
@usableFromInline let vectorMathMagicBits: Int32 = 0x4B40_0000  // its bit pattern

/// e^x per lane, Cephes `expf` (range reduction by ln 2, degree-5 polynomial): relative error
/// ≤ 2 ulp on [−87, 88]; below −87.3 the result is 0 (it would be subnormal), above 88.7 +inf.
@inlinable public func vexp(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let hi: Float = 88.72283, lo: Float = -87.33654
    let xc = x.replacing(with: hi, where: x .> hi).replacing(with: lo, where: x .< lo)
    let shifted = Lanes(repeating: vectorMathMagic).addingProduct(xc, Lanes(repeating: 1.442695040888963))  // round(x / ln 2) in the low bits
    let n = shifted - vectorMathMagic
    let r = xc.addingProduct(n, Lanes(repeating: -0.693359375)).addingProduct(n, Lanes(repeating: 2.12194440e-4))
    var y = Lanes(repeating: 1.3981999507e-3).addingProduct(r, Lanes(repeating: 1.9875691500e-4))
    y = Lanes(repeating: 8.3334519073e-3).addingProduct(y, r)
    y = Lanes(repeating: 4.1665795894e-2).addingProduct(y, r)
    y = Lanes(repeating: 1.6666665459e-1).addingProduct(y, r)
    y = Lanes(repeating: 5.0000001201e-1).addingProduct(y, r)
    y = (r + 1).addingProduct(y, r * r)
    let exponent = (unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- vectorMathMagicBits &+ 127) &<< 23
    var result = y * unsafeBitCast(exponent, to: Lanes.self)
    result.replace(with: 0, where: x .< lo)
    result.replace(with: .infinity, where: x .> hi)
    return result
}

/// ln x per lane for positive normal x, Cephes `logf` (mantissa in [√½, √2), degree-8
/// polynomial): relative error ≤ 2 ulp. Non-positive or subnormal inputs are not handled (the
/// losses only take logarithms of softmax normalisers, which are ≥ 1).
@inlinable public func vlog(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let bits = unsafeBitCast(x, to: SIMD16<Int32>.self)
    // x = m · 2^e with the mantissa m in [0.5, 1).
    var e = unsafeBitCast(((bits &>> 23) &- 126) &+ vectorMathMagicBits, to: Lanes.self) - vectorMathMagic
    var m = unsafeBitCast((bits & 0x007F_FFFF) | 0x3F00_0000, to: Lanes.self)
    let small = m .< Lanes(repeating: 0.707106781186547524)
    e = e - Lanes(repeating: 1).replacing(with: 0, where: .!small)
    m = m + m.replacing(with: 0, where: .!small) - 1
    let z = m * m
    var y = Lanes(repeating: -1.1514610310e-1).addingProduct(m, Lanes(repeating: 7.0376836292e-2))
    y = Lanes(repeating: 1.1676998740e-1).addingProduct(y, m)
    y = Lanes(repeating: -1.2420140846e-1).addingProduct(y, m)
    y = Lanes(repeating: 1.4249322787e-1).addingProduct(y, m)
    y = Lanes(repeating: -1.6668057665e-1).addingProduct(y, m)
    y = Lanes(repeating: 2.0000714765e-1).addingProduct(y, m)
    y = Lanes(repeating: -2.4999993993e-1).addingProduct(y, m)
    y = Lanes(repeating: 3.3333331174e-1).addingProduct(y, m)
    y = y * m * z
    y = y.addingProduct(e, Lanes(repeating: -2.12194440e-4))
    y = y.addingProduct(z, Lanes(repeating: -0.5))
    return (m + y).addingProduct(e, Lanes(repeating: 0.693359375))
}
