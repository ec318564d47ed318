import MorphoBench
import MorphoTensor
import XCTest

final class StepFLOPTests: XCTestCase {
    /// A case built with `countingFLOPs` reports the FLOPs its convolutions count in the warm-up
    /// call, and GFLOP/s and % of peak from them; a plain case without declared flops reports none.
    func testCountingCaseReportsTheFLOPsItsConvolutionsCount() {
        let counted = BenchCase(name: "counted", countingFLOPs: {
            var rng = RandomGenerator(seed: 1)
            let x = Tensor.randomNormal([1, 2, 6, 6, 6], using: &rng)
            let w = Tensor.randomNormal([3, 2, 3, 3, 3], using: &rng).requiringGrad()
            return { conv(x, w, padding: 1).sum().backward() }
        })
        let plain = BenchCase(name: "plain") { { _ = Tensor.zeros([4]).sum() } }
        let options = BenchOptions(warmups: 0, minRuns: 2, minSeconds: 0)
        let r = BenchRunner.run(counted, options: options, peakGflops: 100)
        // Forward and weight gradient; the input needs no gradient.
        let expected: Double = 2 * 2 * 2 * 3 * 27 * 216  // 2 passes × 2·Cin·Cout·k³·(6³ voxels)
        XCTAssertEqual(r.flops, expected)
        XCTAssertEqual(r.gflops!, expected / (r.medianMs / 1e3) / 1e9, accuracy: 1e-9 * r.gflops!)
        XCTAssertEqual(r.peakPct!, r.gflops!, accuracy: 1e-9 * r.gflops!)
        let p = BenchRunner.run(plain, options: options)
        XCTAssertNil(p.flops)
        XCTAssertNil(p.gflops)
        let (rows, _) = BenchRunner.interleaved([counted, plain], rounds: 2, warmups: 0)
        XCTAssertEqual(rows[0].flops, expected)
        XCTAssertNil(rows[1].flops)
    }
}
