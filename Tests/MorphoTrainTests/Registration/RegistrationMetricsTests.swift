import XCTest
import MorphoTensor
@testable import MorphoTrain

final class RegistrationMetricsTests: XCTestCase {
    /// A 3D flow `[1, 3, D, H, W]` whose value at voxel `(z, y, x)` is `f(channel, z, y, x)`.
    func flow3D(_ d: Int, _ h: Int, _ w: Int, _ f: (Int, Double, Double, Double) -> Double) -> Tensor {
        Tensor(shape: [1, 3, d, h, w]) { p in
            for c in 0..<3 {
                for z in 0..<d { for y in 0..<h { for x in 0..<w {
                    p[((c * d + z) * h + y) * w + x] = Float(f(c, Double(z), Double(y), Double(x)))
                } } }
            }
        }
    }

    func testJacobianOfZeroFlowIsOneEverywhere() {
        let det = RegistrationMetrics.jacobianDeterminant(.zeros([1, 3, 4, 5, 6]))
        XCTAssertEqual(det.shape, [1, 1, 4, 5, 6])
        XCTAssertTrue(det.scalars.allSatisfy { $0 == 1 })
        let stats = RegistrationMetrics.jacobianStatistics(det)
        XCTAssertEqual(stats.foldingFraction, 0)
        XCTAssertEqual(stats.logJacobianStd, 0)
    }

    func testJacobianOfAnAffineFieldIsTheMatrixDeterminantAtEveryVoxelIncludingFaces() {
        // φ(p) = A p + b, so u(p) = (A − I) p + b and det(∂φ/∂p) = det A everywhere: central and
        // one-sided differences are both exact on a linear field.
        let a: [[Double]] = [[1.2, 0.1, -0.05], [0.02, 0.9, 0.1], [-0.1, 0.05, 1.1]]
        let b = [0.3, -1.2, 2.0]
        let flow = flow3D(5, 6, 7) { c, z, y, x in
            let p = [z, y, x]
            return (0..<3).reduce(b[c]) { $0 + (a[c][$1] - (c == $1 ? 1 : 0)) * p[$1] }
        }
        let expected = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
        let det = RegistrationMetrics.jacobianDeterminant(flow)
        for v in det.scalars { XCTAssertEqual(Double(v), expected, accuracy: 1e-5) }
        let stats = RegistrationMetrics.jacobianStatistics(det)
        XCTAssertEqual(stats.logJacobianStd, 0, accuracy: 1e-5)
        XCTAssertEqual(stats.mean, expected, accuracy: 1e-5)
    }

    func testJacobianIn2DIsTheTwoByTwoDeterminant() {
        // u_H = 0.5·y (stretch H by 1.5), u_W = −0.25·x (compress W to 0.75): det = 1.125.
        let h = 6, w = 5
        let flow = Tensor(shape: [1, 2, h, w]) { p in
            for y in 0..<h { for x in 0..<w {
                p[y * w + x] = 0.5 * Float(y)
                p[h * w + y * w + x] = -0.25 * Float(x)
            } }
        }
        let det = RegistrationMetrics.jacobianDeterminant(flow)
        XCTAssertEqual(det.shape, [1, 1, h, w])
        for v in det.scalars { XCTAssertEqual(v, 1.125, accuracy: 1e-6) }
    }

    func testFoldingFieldHasNegativeDeterminantWhereTheSlopeExceedsOne() {
        // u_W(x) = a·sin(k x): ∂φ_W/∂x = 1 + a·k·cos(k x) < 0 where cos(k x) < −1/(a k).
        let w = 64
        let k = 2 * Double.pi / 16, a = 4.0
        let flow = flow3D(3, 3, w) { c, _, _, x in c == 2 ? a * sin(k * x) : 0 }
        let det = RegistrationMetrics.jacobianDeterminant(flow)
        let stats = RegistrationMetrics.jacobianStatistics(det)
        XCTAssertLessThan(stats.minimum, 0)
        // Interior voxels: the sign agrees with the analytic derivative (central differences of
        // a sine are the derivative times sin(k)/k, which keeps the sign where |cos| is not tiny).
        var checked = 0
        for x in 1..<(w - 1) {
            let c = cos(k * Double(x))
            let discrete = 1 + a * c * sin(k)
            guard abs(discrete) > 0.1 else { continue }
            XCTAssertEqual(det[flat: x] < 0, discrete < 0, "x = \(x)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 40)
        XCTAssertGreaterThan(stats.foldingFraction, 0.2)
        XCTAssertLessThan(stats.foldingFraction, 0.6)
        XCTAssertEqual(stats.foldingCount, det.scalars.filter { $0 <= 0 }.count)
    }

    func testLogJacobianStdMeasuresTheSpreadOfVolumeChange() {
        // Half the volume stretched by 2 along W, half unchanged: log det is 0 or log 2,
        // an even split, so its standard deviation is log(2)/2.
        let det = Tensor(shape: [1, 1, 1, 1, 4], data: [1, 1, 2, 2])
        XCTAssertEqual(RegistrationMetrics.jacobianStatistics(det).logJacobianStd, log(2) / 2, accuracy: 1e-12)
        let withFold = Tensor(shape: [1, 1, 1, 1, 5], data: [1, 1, 2, 2, -3])
        let stats = RegistrationMetrics.jacobianStatistics(withFold)
        XCTAssertEqual(stats.logJacobianStd, log(2) / 2, accuracy: 1e-12, "folded voxels are excluded from log|J|")
        XCTAssertEqual(stats.foldingFraction, 0.2)
    }

    func testDicePerLabelCountsOverlapOfEachLabel() {
        let a = Tensor(shape: [8], data: [0, 1, 1, 1, 1, 2, 2, 0])
        let b = Tensor(shape: [8], data: [0, 0, 1, 1, 1, 2, 3, 3])
        let scores = RegistrationMetrics.dicePerLabel(a, b)
        XCTAssertEqual(scores.map(\.label), [1, 2, 3])
        XCTAssertEqual(scores[0].dice, 2 * 3 / 7, accuracy: 1e-12)
        XCTAssertEqual(scores[1].dice, 2 * 1 / 3, accuracy: 1e-12)
        XCTAssertEqual(scores[2].dice, 0)
        XCTAssertEqual(RegistrationMetrics.meanDice(scores), (6.0 / 7 + 2.0 / 3) / 3, accuracy: 1e-12)
    }

    func testDiceOfIdenticalMapsIsOneAndAnAbsentNamedLabelIsNaN() {
        let a = Tensor(shape: [4], data: [0, 1, 2, 2])
        let scores = RegistrationMetrics.dicePerLabel(a, a, labels: [1, 2, 5])
        XCTAssertEqual(scores[0].dice, 1)
        XCTAssertEqual(scores[1].dice, 1)
        XCTAssertTrue(scores[2].dice.isNaN)
        XCTAssertEqual(RegistrationMetrics.meanDice(scores), 1)
    }
}
