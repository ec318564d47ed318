// Whole-row SIMD arithmetic shared by the separable kernels (box sums, fixed-tap filters,
// resampling): a row is `n` contiguous floats, processed 16 lanes at a time (one zmm register
// with `-target-cpu native`) with a scalar tail. Internal: the kernels are the API.

// The lane helpers (`loadLanes`, `storeLanes`, …) are in Lanes.swift.

/// `dst[i] += a[i]`.
@inline(__always) func rowAdd(_ dst: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 16 <= n { storeLanes(loadLanes(dst + i) + loadLanes(a + i), dst + i); i += 16 }
    while i < n { dst[i] += a[i]; i += 1 }
}

/// `dst[i] = alpha · a[i]`.
@inline(__always) func rowScale(_ dst: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ alpha: Float, _ n: Int) {
    var i = 0
    let va = Lanes(repeating: alpha)
    while i + 16 <= n { storeLanes(va * loadLanes(a + i), dst + i); i += 16 }
    while i < n { dst[i] = alpha * a[i]; i += 1 }
}

/// `dst[i] += alpha · a[i]` (fused multiply-add).
@inline(__always) func rowAxpy(_ dst: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ alpha: Float, _ n: Int) {
    var i = 0
    let va = Lanes(repeating: alpha)
    while i + 16 <= n { storeLanes(loadLanes(dst + i).addingProduct(va, loadLanes(a + i)), dst + i); i += 16 }
    while i < n { dst[i] = dst[i].addingProduct(alpha, a[i]); i += 1 }
}

/// `dst[i] = w0 · a[i] + w1 · b[i]`: one output row of a two-tap linear resampling.
@inline(__always) func rowBlend(
    _ dst: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ w0: Float, _ b: UnsafePointer<Float>, _ w1: Float, _ n: Int
) {
    var i = 0
    let v0 = Lanes(repeating: w0), v1 = Lanes(repeating: w1)
    while i + 16 <= n { storeLanes((v0 * loadLanes(a + i)).addingProduct(v1, loadLanes(b + i)), dst + i); i += 16 }
    while i < n { dst[i] = (w0 * a[i]).addingProduct(w1, b[i]); i += 1 }
}

/// `dst[i] = prev[i] + plus?[i] − minus?[i]`: one step of a running window sum; a `nil` row is
/// a zero-padding row outside the line.
@inline(__always) func rowSlide(
    _ dst: UnsafeMutablePointer<Float>, _ prev: UnsafePointer<Float>,
    plus: UnsafePointer<Float>?, minus: UnsafePointer<Float>?, _ n: Int
) {
    switch (plus, minus) {
    case let (p?, m?):
        var i = 0
        while i + 16 <= n { storeLanes(loadLanes(prev + i) + loadLanes(p + i) - loadLanes(m + i), dst + i); i += 16 }
        while i < n { dst[i] = prev[i] + p[i] - m[i]; i += 1 }
    case let (p?, nil):
        var i = 0
        while i + 16 <= n { storeLanes(loadLanes(prev + i) + loadLanes(p + i), dst + i); i += 16 }
        while i < n { dst[i] = prev[i] + p[i]; i += 1 }
    case let (nil, m?):
        var i = 0
        while i + 16 <= n { storeLanes(loadLanes(prev + i) - loadLanes(m + i), dst + i); i += 16 }
        while i < n { dst[i] = prev[i] - m[i]; i += 1 }
    case (nil, nil):
        if UnsafePointer(dst) != prev { dst.update(from: prev, count: n) }
    }
}
