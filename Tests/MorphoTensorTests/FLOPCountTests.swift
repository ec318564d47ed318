import MorphoTensor
import XCTest

final class FLOPCountTests: XCTestCase {
    /// 2·N·Cin·Cout·k³·(output voxels) for a stride-2 3D convolution, forward only.
    func testConvolutionForwardCountsTheDirectFLOPFormula() {
        var rng = RandomGenerator(seed: 1)
        let x = Tensor.randomNormal([2, 3, 7, 6, 5], using: &rng)
        let w = Tensor.randomNormal([4, 3, 3, 3, 3], using: &rng)
        let (y, count) = FLOPCounting.count { withoutGradients { conv(x, w, stride: 2, padding: 1) } }
        XCTAssertEqual(y.shape, [2, 4, 4, 3, 3])
        let expected: Double = 2 * 2 * 3 * 4 * 27 * 36  // 2·N·Cin·Cout·k³·(4·3·3 output voxels)
        XCTAssertEqual(count.forward, expected)
        XCTAssertEqual(count.dataGradient, 0)
        XCTAssertEqual(count.weightGradient, 0)
        XCTAssertEqual(count.forwardCalls, 1)
    }

    /// Backward counts one weight-gradient pass and one data-gradient pass per input part that
    /// needs a gradient, each part its share of the input channels.
    func testBackwardCountsTheDataGradientOfEachPartNeedingOneAndTheWeightGradientOnce() {
        var rng = RandomGenerator(seed: 2)
        let a = Tensor.randomNormal([1, 2, 5, 6], using: &rng).requiringGrad()
        let b = Tensor.randomNormal([1, 3, 5, 6], using: &rng)
        let w = Tensor.randomNormal([4, 5, 3, 3], using: &rng).requiringGrad()
        let bias = Tensor.randomNormal([4], using: &rng).requiringGrad()
        let forward: Double = 2 * 1 * 5 * 4 * 9 * 30  // 2·N·Cin·Cout·k²·(5·6 output voxels)
        let (_, count) = FLOPCounting.count { conv(parts: [a, b], w, bias, padding: 1).squared().sum().backward() }
        XCTAssertEqual(count.forward, forward)
        XCTAssertEqual(count.dataGradient, forward * 2 / 5, accuracy: 1e-6)
        XCTAssertEqual(count.weightGradient, forward)
        XCTAssertEqual(count.total, forward * (2 + 2.0 / 5), accuracy: 1e-6)
    }

    /// A transposed convolution counts the convolution it transposes: 2·Cin·Cout·k³ per voxel
    /// of its (small) input, and 3× that with both gradients.
    func testTransposedConvolutionCountsTheConvolutionItTransposes() {
        var rng = RandomGenerator(seed: 3)
        let x = Tensor.randomNormal([1, 4, 3, 3, 3], using: &rng).requiringGrad()
        let w = Tensor.randomNormal([4, 2, 3, 3, 3], using: &rng).requiringGrad()
        let (y, count) = FLOPCounting.count { () -> Tensor in
            let y = convTransposed(x, w, stride: 2, padding: 1, outputPadding: 1)
            y.squared().sum().backward()
            return y
        }
        XCTAssertEqual(y.shape, [1, 2, 6, 6, 6])
        let forward: Double = 2 * 4 * 2 * 27 * 27
        XCTAssertEqual(count.forward, forward)
        XCTAssertEqual(count.dataGradient, forward)
        XCTAssertEqual(count.weightGradient, forward)
    }

    /// Outside a counting scope nothing is recorded, and a scope sees only its own work.
    func testCountingScopeSeesOnlyItsOwnConvolutions() {
        var rng = RandomGenerator(seed: 4)
        let x = Tensor.randomNormal([1, 1, 4, 4], using: &rng)
        let w = Tensor.randomNormal([2, 1, 3, 3], using: &rng)
        _ = conv(x, w, padding: 1)
        let (_, empty) = FLOPCounting.count { _ = x.sum() }
        XCTAssertEqual(empty.total, 0)
        let (_, one) = FLOPCounting.count { _ = conv(x, w, padding: 1) }
        let expected: Double = 2 * 2 * 9 * 16
        XCTAssertEqual(one.total, expected)
    }
}
