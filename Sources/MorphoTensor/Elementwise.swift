import Foundation
import MorphoKernels

// Elementwise arithmetic with broadcasting and elementwise functions, each forward next to its
// derivative. Loops are specialised per function (generic over a small struct), so no closure
// or existential is called per element, and large tensors are split over the cores.

/// A binary elementwise function f(a, b) with its partial derivatives.
public protocol BinaryFunction {
    func value(_ a: Float, _ b: Float) -> Float
}

/// A unary elementwise function y = f(x) with dy/dx expressed from x and y.
public protocol UnaryFunction {
    func value(_ x: Float) -> Float
    func derivative(x: Float, y: Float) -> Float
}

struct Add: BinaryFunction { @inline(__always) func value(_ a: Float, _ b: Float) -> Float { a + b } }
struct Sub: BinaryFunction { @inline(__always) func value(_ a: Float, _ b: Float) -> Float { a - b } }
struct Mul: BinaryFunction { @inline(__always) func value(_ a: Float, _ b: Float) -> Float { a * b } }
struct Div: BinaryFunction { @inline(__always) func value(_ a: Float, _ b: Float) -> Float { a / b } }
/// d(a/b)/db = -a/b², evaluated as f(a, b) with a = g·x, b = y: -(g·x)/(y·y).
struct NegDivSquare: BinaryFunction { @inline(__always) func value(_ a: Float, _ b: Float) -> Float { -a / (b * b) } }

/// Evaluates `f` over two broadcast operands without recording anything.
func broadcastApply<F: BinaryFunction>(_ a: Tensor, _ b: Tensor, _ f: F) -> Tensor {
    let pa = a.storage.pointer, pb = b.storage.pointer
    if a.shape == b.shape {
        return Tensor(shape: a.shape) { out in
            Parallel.forRanges(a.count) { r in
                for i in r { out[i] = f.value(pa[i], pb[i]) }
            }
        }
    }
    let shape = broadcastShape(a.shape, b.shape)
    if b.count == 1, shape == a.shape {
        let s = pb[0]
        return Tensor(shape: shape) { out in
            Parallel.forRanges(a.count) { r in for i in r { out[i] = f.value(pa[i], s) } }
        }
    }
    if a.count == 1, shape == b.shape {
        let s = pa[0]
        return Tensor(shape: shape) { out in
            Parallel.forRanges(b.count) { r in for i in r { out[i] = f.value(s, pb[i]) } }
        }
    }
    let walk = StridedWalk(shape: shape, operands: [shape, a.shape, b.shape])
    let so = walk.strides[0].last!, sa = walk.strides[1].last!, sb = walk.strides[2].last!
    return Tensor(shape: shape) { out in
        walk.forEachRow { off, n in
            let o = off[0], ia = off[1], ib = off[2]
            if sa == 1 && sb == 1 {
                for j in 0..<n { out[o + j] = f.value(pa[ia + j], pb[ib + j]) }
            } else if sb == 0 {
                let s = pb[ib]
                for j in 0..<n { out[o + j * so] = f.value(pa[ia + j * sa], s) }
            } else if sa == 0 {
                let s = pa[ia]
                for j in 0..<n { out[o + j * so] = f.value(s, pb[ib + j * sb]) }
            } else {
                for j in 0..<n { out[o + j * so] = f.value(pa[ia + j * sa], pb[ib + j * sb]) }
            }
        }
    }
}

/// Applies a unary function without recording.
func mapApply<F: UnaryFunction>(_ x: Tensor, _ f: F) -> Tensor {
    let px = x.storage.pointer
    return Tensor(shape: x.shape) { out in
        Parallel.forRanges(x.count) { r in for i in r { out[i] = f.value(px[i]) } }
    }
}

extension Tensor {
    /// y = f(x) elementwise, with backward dx = g · f'(x, y). Specialised for the functions of
    /// this module; a function type from another module is called through its protocol witness
    /// per element (this generic is not inlinable), so hot code there writes its own loop.
    public func map<F: UnaryFunction>(_ f: F) -> Tensor {
        let y = mapApply(self, f)
        return Tensor.record(y, inputs: [self]) { [self] g in
            let px = self.storage.pointer, py = y.storage.pointer, pg = g.storage.pointer
            let dx = Tensor(shape: self.shape) { out in
                Parallel.forRanges(self.count) { r in
                    for i in r { out[i] = pg[i] * f.derivative(x: px[i], y: py[i]) }
                }
            }
            return [dx]
        }
    }

    // MARK: Binary arithmetic (broadcasting)

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let y = broadcastApply(a, b, Add())
        return record(y, inputs: [a, b]) { g in
            [a.requiresGrad ? g.sum(toShape: a.shape) : nil, b.requiresGrad ? g.sum(toShape: b.shape) : nil]
        }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let y = broadcastApply(a, b, Sub())
        return record(y, inputs: [a, b]) { g in
            [a.requiresGrad ? g.sum(toShape: a.shape) : nil, b.requiresGrad ? (-g).sum(toShape: b.shape) : nil]
        }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let y = broadcastApply(a, b, Mul())
        return record(y, inputs: [a, b]) { g in
            [a.requiresGrad ? broadcastApply(g, b, Mul()).sum(toShape: a.shape) : nil,
             b.requiresGrad ? broadcastApply(g, a, Mul()).sum(toShape: b.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let y = broadcastApply(a, b, Div())
        return record(y, inputs: [a, b]) { g in
            [a.requiresGrad ? broadcastApply(g, b, Div()).sum(toShape: a.shape) : nil,
             b.requiresGrad ? broadcastApply(broadcastApply(g, a, Mul()), b, NegDivSquare()).sum(toShape: b.shape) : nil]
        }
    }

    public static func + (a: Tensor, s: Float) -> Tensor { a.map(AffineMap(scale: 1, shift: s)) }
    public static func + (s: Float, a: Tensor) -> Tensor { a.map(AffineMap(scale: 1, shift: s)) }
    public static func - (a: Tensor, s: Float) -> Tensor { a.map(AffineMap(scale: 1, shift: -s)) }
    public static func - (s: Float, a: Tensor) -> Tensor { a.map(AffineMap(scale: -1, shift: s)) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.map(AffineMap(scale: s, shift: 0)) }
    public static func * (s: Float, a: Tensor) -> Tensor { a.map(AffineMap(scale: s, shift: 0)) }
    public static func / (a: Tensor, s: Float) -> Tensor { a.map(AffineMap(scale: 1 / s, shift: 0)) }
    public static func / (s: Float, a: Tensor) -> Tensor { a.map(Reciprocal(numerator: s)) }
    public static prefix func - (a: Tensor) -> Tensor { a.map(AffineMap(scale: -1, shift: 0)) }

    // MARK: Elementwise functions

    public func exp() -> Tensor { map(Exp()) }
    /// Natural logarithm; log(0) = -inf as in IEEE.
    public func log() -> Tensor { map(Log()) }
    /// x^p for a constant exponent p (x ≥ 0 unless p is an integer).
    public func pow(_ p: Float) -> Tensor { p == 2 ? squared() : map(Power(p: p)) }
    public func squared() -> Tensor { map(Square()) }
    /// |x|, with derivative sign(x) (0 at 0, as PyTorch).
    public func abs() -> Tensor { map(Absolute()) }
    public func sqrt() -> Tensor { map(SquareRoot()) }
    /// min(max(x, low), high); the derivative is 1 strictly inside, 0 where clamped.
    public func clamped(min low: Float = -.infinity, max high: Float = .infinity) -> Tensor { map(Clamp(low: low, high: high)) }
    public func relu() -> Tensor { map(LeakyReLU(slope: 0)) }
    public func leakyRelu(_ slope: Float = 0.01) -> Tensor { map(LeakyReLU(slope: slope)) }
    public func sigmoid() -> Tensor { map(Sigmoid()) }
    public func tanh() -> Tensor { map(HyperbolicTangent()) }
}

public struct AffineMap: UnaryFunction {
    let scale: Float, shift: Float
    @inline(__always) public func value(_ x: Float) -> Float { x * scale + shift }
    @inline(__always) public func derivative(x: Float, y: Float) -> Float { scale }
}
public struct Reciprocal: UnaryFunction {
    let numerator: Float
    @inline(__always) public func value(_ x: Float) -> Float { numerator / x }
    @inline(__always) public func derivative(x: Float, y: Float) -> Float { -y / x }
}
public struct Exp: UnaryFunction {
    @inline(__always) public func value(_ x: Float) -> Float { Foundation.exp(x) }
    @inline(__always) public func derivative(x: Float, y: Float) -> Float { y }
}
public struct Log: UnaryFunction {
    @inline(__always) public func value(_ x: Float) -> Float { Foundation.log(x) }
    @inline(__always) public func derivative(x: Float, y: Float) -> Float { 1 / x }
}
public struct Power: UnaryFunction {
    let p: Float
    @inline(__always) public func value(_ x: Float) -> Float { Foundation.pow(x, p) }
    @inline(__always) public func derivative(x: Float, y: Float) -> Float { p * Foundation.pow(x, p - 1) }
}
public struct Square: UnaryFunction {
    @inline(__always) public func value(_ x: Float) -> Float { x * x }
    @inline(__always) public func derivative(x: Float, y: Float) -> Float { 2 * x }
}
public struct Absolute: UnaryFunction {
    @inline(__always) public func value(_ x: Float) -> Float { Swift.abs(x) }
    @inline(__always) public func derivative(x: Float, y: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : 0) }
}
public struct SquareRoot: UnaryFunction {
    @inline(__always) public func value(_ x: Float) -> Float { x.squareRoot() }
    @inline(__always) public func derivative(x: Float, y: Float) -> Float { 0.5 / y }
}
public struct Clamp: UnaryFunction {
    let low: Float, high: Float
    @inline(__always) public func value(_ x: Float) -> Float { Swift.min(Swift.max(x, low), high) }
    @inline(__always) public func derivative(x: Float, y: Float) -> Float { x > low && x < high ? 1 : 0 }
}
public struct LeakyReLU: UnaryFunction {
    let slope: Float
    @inline(__always) public func value(_ x: Float) -> Float { x > 0 ? x : slope * x }
    @inline(__always) public func derivative(x: Float, y: Float) -> Float { x > 0 ? 1 : slope }
}
public struct Sigmoid: UnaryFunction {
    @inline(__always) public func value(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
    @inline(__always) public func derivative(x: Float, y: Float) -> Float { y * (1 - y) }
}
public struct HyperbolicTangent: UnaryFunction {
    @inline(__always) public func value(_ x: Float) -> Float { Foundation.tanh(x) }
    @inline(__always) public func derivative(x: Float, y: Float) -> Float { 1 - y * y }
}
