import MorphoKernels
import XCTest
@testable import MorphoTrain

/// `ComputeSettings.apply(threads:)`, the one place a command sets the kernels' worker threads.
final class ComputeSettingsTests: XCTestCase {
    func testApplySetsTheKernelThreadsAndNilKeepsThem() {
        let before = Parallel.threads
        defer { Parallel.threads = before }
        let chosen = before == 3 ? 2 : 3
        ComputeSettings.apply(threads: chosen)
        XCTAssertEqual(Parallel.threads, chosen)
        XCTAssertEqual(ComputeSettings.threads, chosen)
        ComputeSettings.apply(threads: nil)
        XCTAssertEqual(Parallel.threads, chosen)
    }
}
