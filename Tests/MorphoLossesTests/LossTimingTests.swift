import Foundation
import MorphoKernels
import MorphoLosses
import MorphoTensor
import XCTest

/// Forward + backward timings of the losses with speed targets, at the sizes of the PyTorch
/// baselines (/work/shared/bench/table.md). Timing on a shared 2-core machine is noisy, so these
/// only run when `MORPHOSEG_TIMING=1` is set; they print the median of 7 runs after 2 warm-ups.
///
///     MORPHOSEG_TIMING=1 swift test -c release -Xswiftc -enable-testing --filter LossTimingTests
final class LossTimingTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["MORPHOSEG_TIMING"] == "1", "set MORPHOSEG_TIMING=1 to time the losses")
    }

    /// Process CPU time in ms (all threads).
    func cpuMilliseconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) * 1e3 + Double(ts.tv_nsec) / 1e6
    }

    /// Median wall time and median CPU time (all threads) in ms of `body` over `runs` runs after
    /// `warmups`. On a loaded machine the wall time inflates; the CPU time shows the work done.
    func median(runs: Int = 7, warmups: Int = 2, _ body: () -> Void) -> (wall: Double, cpu: Double) {
        for _ in 0..<warmups { body() }
        var wall: [Double] = [], cpu: [Double] = []
        for _ in 0..<runs {
            let c0 = cpuMilliseconds()
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            wall.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            cpu.append(cpuMilliseconds() - c0)
        }
        return (wall.sorted()[runs / 2], cpu.sorted()[runs / 2])
    }

    func report(_ name: String, _ t: (wall: Double, cpu: Double)) {
        print(String(format: "timing %-28@ wall %8.2f ms  cpu %8.2f ms (medians of 7, %d threads)", name as NSString, t.wall, t.cpu, Parallel.threads))
    }

    func testLocalNCCWindow9At128Cubed() {
        var rng = RandomGenerator(seed: 1)
        let fixed = Tensor.randomUniform([1, 1, 128, 128, 128], using: &rng)
        let moving = Tensor.randomUniform([1, 1, 128, 128, 128], using: &rng)
        let loss = LocalNCC(window: 9)
        report("loss/lcc9/128/fwd", median { _ = withoutGradients { loss(fixed, moving) } })
        report("loss/lcc9/128/fwdbwd", median {
            let m = moving.requiringGrad()
            loss(fixed, m).backward()
            XCTAssertNotNil(m.grad)
        })
    }

    func testMutualInformationAt128Cubed() {
        var rng = RandomGenerator(seed: 3)
        let fixed = Tensor.randomUniform([1, 1, 128, 128, 128], using: &rng)
        let moving = Tensor.randomUniform([1, 1, 128, 128, 128], using: &rng)
        let loss = MutualInformation()
        report("loss/mi32/128/fwd", median { _ = withoutGradients { loss(fixed, moving) } })
        report("loss/mi32/128/fwdbwd", median {
            let m = moving.requiringGrad()
            loss(fixed, m).backward()
            XCTAssertNotNil(m.grad)
        })
    }

    func testGradL2At3x128Cubed() {
        var rng = RandomGenerator(seed: 2)
        let flow = Tensor.randomNormal([1, 3, 128, 128, 128], using: &rng)
        let loss = GradientSmoothnessLoss(penalty: .l2)
        report("loss/grad-l2/3x128/fwdbwd", median {
            let f = flow.requiringGrad()
            loss(f).backward()
            XCTAssertNotNil(f.grad)
        })
    }

    func testDiceCEAt2x128Cubed() {
        var rng = RandomGenerator(seed: 3)
        let logits = Tensor.randomNormal([1, 2, 128, 128, 128], using: &rng)
        let labels = Tensor(shape: [1, 1, 128, 128, 128]) { p in for v in 0..<(128 * 128 * 128) { p[v] = rng.uniform() < 0.3 ? 1 : 0 } }
        let loss = DiceCELoss()
        report("loss/dice-ce/2x128/fwdbwd", median {
            let x = logits.requiringGrad()
            loss(logits: x, labels: labels).backward()
            XCTAssertNotNil(x.grad)
        })
    }
}
