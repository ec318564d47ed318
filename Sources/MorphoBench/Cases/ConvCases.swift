import MorphoKernels

extension BenchCase {
    /// The single-layer shapes of `/work/shared/bench/bench_torch.py` (kernel 3, padding 1):
    /// `conv3d/CIN-COUT/SIZE/{fwd,fwdbwd}` at N = 1 and `conv2d/CIN-COUT/SIZE/bN/{fwd,fwdbwd}`
    /// at N = 1 and 8. `fwdbwd` is forward + data gradient + weight and bias gradient, except
    /// for Cin = 1 where, as in the PyTorch script, the image needs no gradient: forward +
    /// weight gradient only. FLOPs count 2 per tap and pass (3× or 2× the forward).
    static var convCases: [BenchCase] {
        var cases = [BenchCase]()
        for (cin, cout, size) in [(1, 16, 64), (16, 16, 64), (16, 32, 64), (32, 32, 32), (64, 64, 16)] {
            let g = ConvGeometry.cubic(cin: cin, cout: cout, size: (size, size, size), kernel: 3, stride: 1, padding: 1)
            cases += convPair("conv3d/\(cin)-\(cout)/\(size)", g)
        }
        for n in [1, 8] {
            for (cin, cout, size) in [(1, 16, 256), (16, 16, 256), (32, 32, 128)] {
                let g = ConvGeometry.planar(n: n, cin: cin, cout: cout, size: (size, size), kernel: 3, stride: 1, padding: 1)
                cases += convPair("conv2d/\(cin)-\(cout)/\(size)/b\(n)", g)
            }
        }
        return cases
    }

    private static func convPair(_ prefix: String, _ g: ConvGeometry) -> [BenchCase] {
        let needGradInput = g.cin > 1
        let forward = BenchCase(name: prefix + "/fwd", flops: g.flops) {
            let x = BenchBuffer(random: g.inputCount, seed: 1)
            let w = BenchBuffer(random: g.weightCount, seed: 2)
            let b = BenchBuffer(random: g.cout, seed: 3)
            let y = BenchBuffer(zeros: g.outputCount)
            return { Convolution.forward(g, input: x.pointer, weight: w.pointer, bias: b.pointer, output: y.pointer) }
        }
        let both = BenchCase(name: prefix + "/fwdbwd", flops: g.flops * (needGradInput ? 3 : 2)) {
            let x = BenchBuffer(random: g.inputCount, seed: 1)
            let w = BenchBuffer(random: g.weightCount, seed: 2)
            let b = BenchBuffer(random: g.cout, seed: 3)
            let y = BenchBuffer(zeros: g.outputCount)
            let gy = BenchBuffer(random: g.outputCount, seed: 4)
            let gx = BenchBuffer(zeros: needGradInput ? g.inputCount : 0)
            let gw = BenchBuffer(zeros: g.weightCount)
            let gb = BenchBuffer(zeros: g.cout)
            return {
                Convolution.forward(g, input: x.pointer, weight: w.pointer, bias: b.pointer, output: y.pointer)
                if needGradInput {
                    Convolution.backwardData(g, gradOutput: gy.pointer, weight: w.pointer, gradInput: gx.pointer)
                }
                Convolution.backwardWeight(g, input: x.pointer, gradOutput: gy.pointer, gradWeight: gw.pointer, gradBias: gb.pointer)
            }
        }
        return [forward, both]
    }
}
