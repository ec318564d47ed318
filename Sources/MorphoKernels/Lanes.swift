// The SIMD lane helpers of MorphoSeg's hot loops (row arithmetic and separable kernels here, the
// fused loss kernels in MorphoLosses, softmax in MorphoTensor): 16 Float lanes, one zmm register
// with `-target-cpu native` (two ymm without AVX-512), unaligned loads and stores, partial loads
// and stores for the tail of a range. Public and `@inlinable` so that loops in other modules are
// specialised and inlined as if the helpers were their own. The vector exp/log are `vexp`/`vlog`
// (VectorExp.swift).

/// 16 Float lanes.
public typealias Lanes = SIMD16<Float>
/// A per-lane condition of `Lanes`.
public typealias LaneMask = SIMDMask<SIMD16<Int32>>

/// 16 floats from `p` (unaligned).
@inlinable @inline(__always) public func loadLanes(_ p: UnsafePointer<Float>) -> Lanes {
    UnsafeRawPointer(p).loadUnaligned(as: Lanes.self)
}

/// Stores 16 floats at `p` (unaligned).
@inlinable @inline(__always) public func storeLanes(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
}

/// `v` moved up one lane with `first` in lane 0: `out[0] = first`, `out[i] = v[i − 1]`. Built in
/// registers (a permute and an insert), so a vector assembled this way need not go through
/// memory, where a vector load over several smaller stores cannot be store-forwarded.
@inlinable @inline(__always) public func shiftedUp(_ v: Lanes, inserting first: Float = 0) -> Lanes {
    var out = Lanes()
    out[0] = first
    for i in 1..<16 { out[i] = v[i - 1] }
    return out
}

/// `v` moved down one lane with `last` in lane 15: `out[i] = v[i + 1]`, `out[15] = last`.
@inlinable @inline(__always) public func shiftedDown(_ v: Lanes, inserting last: Float = 0) -> Lanes {
    var out = Lanes()
    for i in 0..<15 { out[i] = v[i + 1] }
    out[15] = last
    return out
}

/// The first `count` (< 16) floats at `p`, the other lanes `fill`.
@inlinable @inline(__always) public func loadLanes(_ p: UnsafePointer<Float>, count: Int, fill: Float = 0) -> Lanes {
    var v = Lanes(repeating: fill)
    for k in 0..<count { v[k] = p[k] }
    return v
}

/// Stores the first `count` (< 16) lanes of `v` at `p`.
@inlinable @inline(__always) public func storeLanes(_ v: Lanes, _ p: UnsafeMutablePointer<Float>, count: Int) {
    for k in 0..<count { p[k] = v[k] }
}

/// Lanes `0..<count` set.
@inlinable @inline(__always) public func laneMask(count: Int) -> LaneMask {
    SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .< SIMD16<Int32>(repeating: Int32(count))
}

/// Σ of the lanes in Double.
@inlinable @inline(__always) public func laneSum(_ v: Lanes) -> Double {
    var s = 0.0
    for k in 0..<16 { s += Double(v[k]) }
    return s
}
