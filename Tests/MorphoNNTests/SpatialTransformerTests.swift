import XCTest
import MorphoTensor
@testable import MorphoNN
import MorphoTestSupport

/// The spatial transformer and scaling-and-squaring against VoxelMorph's golden cases.
final class SpatialTransformerTests: XCTestCase {
    func testLinearWarpMatchesVoxelMorph() throws {
        for name in ["warp_linear_2d", "warp_linear_3d"] {
            let golden = try GoldenCase(name)
            let src = golden.inputs["src"]!.requiringGrad(), flow = golden.inputs["flow"]!.requiringGrad()
            let out = SpatialTransformer()(src, flow: flow)
            golden.assertClose(out, golden.output, "output")
            (out * golden.cotangent!).sum().backward()
            golden.assertClose(src.grad, golden.grads["src"]!, "d/dsrc")
            golden.assertClose(flow.grad, golden.grads["flow"]!, "d/dflow")
        }
    }

    func testNearestWarpMatchesVoxelMorph() throws {
        for name in ["warp_nearest_2d", "warp_nearest_3d"] {
            let golden = try GoldenCase(name)
            let out = SpatialTransformer().warpLabels(golden.inputs["src"]!, flow: golden.inputs["flow"]!)
            golden.assertClose(out, golden.output, "output")
        }
    }

    func testIntegrationMatchesVoxelMorph() throws {
        for name in ["integrate_2d", "integrate_3d"] {
            let golden = try GoldenCase(name)
            let steps = (golden.params["steps"] as! NSNumber).intValue
            let vec = golden.inputs["vec"]!.requiringGrad()
            let out = integrate(vec, steps: steps)
            golden.assertClose(out, golden.output, "output")
            (out * golden.cotangent!).sum().backward()
            golden.assertClose(vec.grad, golden.grads["vec"]!, "d/dvec")
        }
    }

    func testWarpedOneHotStillSumsToOneInside() {
        var rng = RandomGenerator(seed: 3)
        let labels = (0..<36).map { _ in Int(rng.next() % 3) }
        let oneHot = Tensor(shape: [1, 3, 6, 6]) { p in
            for c in 0..<3 { for i in 0..<36 { p[c * 36 + i] = labels[i] == c ? 1 : 0 } }
        }
        let flow = Tensor.randomUniform([1, 2, 6, 6], low: -0.4, high: 0.4, using: &rng)
        let warped = SpatialTransformer().warpOneHot(oneHot, flow: flow)
        // Voxels whose sample stays inside the volume keep a partition of unity.
        for y in 1..<5 { for x in 1..<5 {
            let total = (0..<3).reduce(Float(0)) { $0 + warped[flat: $1 * 36 + y * 6 + x] }
            XCTAssertEqual(total, 1, accuracy: 1e-5)
        } }
    }
}
