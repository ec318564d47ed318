import XCTest
import MorphoTensor
@testable import MorphoNN

/// What every optimizer shares: parameters without gradients, saved state, gradient clipping.
final class OptimizerTests: XCTestCase, OptimizerTrajectory {
    func testParameterWithoutGradientIsLeftAlone() {
        let p = Parameter(Tensor(shape: [3], data: start)), q = Parameter(Tensor(shape: [1], data: [7]))
        let adam = Adam([("p", p), ("q", q)], learningRate: 0.1)
        p.setGrad(Tensor(shape: [3], data: [1, 1, 1]))
        adam.step()
        XCTAssertEqual(q.value.scalars, [7])
        XCTAssertEqual(adam.stateDictionary().map(\.0).sorted(), ["p.exp_avg", "p.exp_avg_sq", "p.step"])
    }

    func testResumedOptimizerContinuesTheSameTrajectory() throws {
        for make in [{ (p: [(String, Parameter)]) -> Optimizer in Adam(p, learningRate: 0.05) },
                     { (p: [(String, Parameter)]) -> Optimizer in SGD(p, learningRate: 0.05, momentum: 0.9) }] {
            let a = Parameter(Tensor(shape: [3], data: start))
            let optA = make([("w", a)])
            a.setGrad(Tensor(shape: [3], data: gradients[0]))
            optA.step()
            // Resume: a fresh parameter and optimiser loaded from the saved values and state.
            let b = Parameter(a.value)
            let optB = make([("w", b)])
            try optB.loadState(Dictionary(uniqueKeysWithValues: optA.stateDictionary()))
            for g in gradients.dropFirst() {
                a.setGrad(Tensor(shape: [3], data: g)); optA.step()
                b.setGrad(Tensor(shape: [3], data: g)); optB.step()
            }
            XCTAssertEqual(a.value.scalars, b.value.scalars)
        }
    }

    func testLoadingOptimizerStateOfTheWrongSizeFails() {
        let p = Parameter(Tensor(shape: [3], data: start))
        let adam = Adam([("w", p)])
        let bad = ["w.step": Tensor(shape: [1], data: [2]), "w.exp_avg": Tensor(shape: [2], data: [0, 0])]
        XCTAssertThrowsError(try adam.loadState(bad))
    }

    func testClipGradientNormRescalesToTheLimit() {
        let a = Parameter(.zeros([2])), b = Parameter(.zeros([1]))
        a.setGrad(Tensor(shape: [2], data: [3, 0]))
        b.setGrad(Tensor(shape: [1], data: [4]))
        let norm = clipGradientNorm([a, b], maxNorm: 1)
        XCTAssertEqual(norm, 5, accuracy: 1e-6)
        XCTAssertEqual(a.grad!.scalars[0], 0.6, accuracy: 1e-5)
        XCTAssertEqual(b.grad!.scalars[0], 0.8, accuracy: 1e-5)
        // Below the limit nothing changes.
        XCTAssertEqual(clipGradientNorm([a, b], maxNorm: 10), 1, accuracy: 1e-5)
        XCTAssertEqual(b.grad!.scalars[0], 0.8, accuracy: 1e-5)
    }
}
