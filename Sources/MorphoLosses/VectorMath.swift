import MorphoKernels

// SIMD helpers for the fused loss kernels: 16 Float lanes (one zmm register with
// `-target-cpu native`), unaligned loads/stores, partial loads for the tails of a range. The
// vector exp/log are MorphoKernels' `vexp`/`vlog` (VectorExp.swift).

typealias Lanes = SIMD16<Float>
typealias LaneMask = SIMDMask<SIMD16<Int32>>

@inline(__always) func load(_ p: UnsafePointer<Float>) -> Lanes {
    UnsafeRawPointer(p).loadUnaligned(as: Lanes.self)
}

@inline(__always) func load(_ p: UnsafeMutablePointer<Float>) -> Lanes {
    UnsafeRawPointer(p).loadUnaligned(as: Lanes.self)
}

@inline(__always) func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
}

/// The first `count` (< 16) floats at `p`, the other lanes `fill`.
@inline(__always) func load(_ p: UnsafePointer<Float>, count: Int, fill: Float = 0) -> Lanes {
    var v = Lanes(repeating: fill)
    for k in 0..<count { v[k] = p[k] }
    return v
}

/// Stores the first `count` (< 16) lanes of `v` at `p`.
@inline(__always) func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>, count: Int) {
    for k in 0..<count { p[k] = v[k] }
}

/// Lanes `0..<count` set.
@inline(__always) func laneMask(count: Int) -> LaneMask {
    SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .< SIMD16<Int32>(repeating: Int32(count))
}

/// Σ of the lanes in Double.
@inline(__always) func laneSum(_ v: Lanes) -> Double {
    var s = 0.0
    for k in 0..<16 { s += Double(v[k]) }
    return s
}
