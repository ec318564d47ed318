import XCTest
import MorphoTensor
@testable import MorphoNN

/// `UNet(deepSupervision:)`: 1×1 logit heads on the decoder's lower levels, drawn after every
/// other layer so the rest of the network is the plain one, weight for weight.
final class UNetDeepSupervisionTests: XCTestCase {
    func testHeadsGiveLogitsAtEachLowerLevelButTheDeepest() {
        var rng = RandomGenerator(seed: 4)
        // 4 levels: outputs at the input size and levels 1 and 2 (⌈n/2⌉, ⌈n/4⌉); level 3 none.
        let net = UNet(spatialRank: 2, inChannels: 1, outChannels: 3, channels: [4, 8, 8, 8, 8], deepSupervision: true, rng: &rng)
        XCTAssertEqual(net.heads.count, 2)
        let x = Tensor.randomNormal([2, 1, 17, 12], using: &rng)
        let outs = withoutGradients { net.deepSupervisionLogits(x) }
        XCTAssertEqual(outs.map(\.shape), [[2, 3, 17, 12], [2, 3, 9, 6], [2, 3, 5, 3]])
        XCTAssertEqual(withoutGradients { net(x) }.scalars, outs[0].scalars)
    }

    func testWithoutDeepSupervisionTheNetworkIsUnchanged() {
        var a = RandomGenerator(seed: 9), b = RandomGenerator(seed: 9), c = RandomGenerator(seed: 9)
        let plain = UNet(spatialRank: 2, inChannels: 1, outChannels: 2, channels: [4, 8, 16, 16], rng: &a)
        let explicit = UNet(spatialRank: 2, inChannels: 1, outChannels: 2, channels: [4, 8, 16, 16], residualUnits: 0,
                            deepSupervision: false, rng: &b)
        let supervised = UNet(spatialRank: 2, inChannels: 1, outChannels: 2, channels: [4, 8, 16, 16], deepSupervision: true, rng: &c)
        let plainState = plain.stateDictionary()
        XCTAssertEqual(explicit.stateDictionary().map(\.0), plainState.map(\.0))
        XCTAssertFalse(plainState.contains { $0.0.hasPrefix("head.") })
        let supervisedState = Dictionary(uniqueKeysWithValues: supervised.stateDictionary())
        XCTAssertEqual(Set(supervisedState.keys).subtracting(plainState.map(\.0)), ["head.0.weight", "head.0.bias"])
        for (name, t) in plainState {
            XCTAssertEqual(supervisedState[name]?.scalars, t.scalars, name)
        }
        var rng = RandomGenerator(seed: 1)
        let x = Tensor.randomNormal([1, 1, 16, 16], using: &rng)
        let y = withoutGradients { plain(x) }
        XCTAssertEqual(withoutGradients { explicit(x) }.scalars, y.scalars)
        XCTAssertEqual(withoutGradients { supervised(x) }.scalars, y.scalars)
    }
}
