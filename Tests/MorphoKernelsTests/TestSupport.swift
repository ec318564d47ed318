import Foundation
import MorphoKernels
import XCTest
import MorphoTestSupport

/// Deterministic generator for test inputs (SplitMix64), so failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func floats(_ n: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<n).map { _ in Float.random(in: range, using: &self) }
    }
}

/// ⟨a, b⟩ in double precision.
func dot(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    var s = 0.0
    for i in a.indices { s += Double(a[i]) * Double(b[i]) }
    return s
}

/// Largest |a − b| over all elements.
func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "counts \(a.count) and \(b.count)")
    var m: Float = 0
    for i in a.indices { m = nanStrictMax(m, abs(a[i] - b[i])) }
    return m
}

/// Asserts the adjoint identity ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ up to a relative tolerance.
func assertAdjoint(_ ax: [Float], _ y: [Float], _ x: [Float], _ aty: [Float], tolerance: Double = 1e-5,
                   _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    let lhs = dot(ax, y), rhs = dot(x, aty)
    let scale = max(1, abs(lhs), abs(rhs))
    XCTAssertLessThanOrEqual(abs(lhs - rhs) / scale, tolerance, "\(what): ⟨Ax,y⟩ = \(lhs), ⟨x,Aᵀy⟩ = \(rhs)", file: file, line: line)
}

/// Runs `body` with `Parallel.threads` temporarily set to `threads`.
func withThreads<T>(_ threads: Int, _ body: () throws -> T) rethrows -> T {
    let saved = Parallel.threads
    Parallel.threads = threads
    defer { Parallel.threads = saved }
    return try body()
}

