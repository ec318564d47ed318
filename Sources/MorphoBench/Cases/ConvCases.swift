import MorphoKernels

extension BenchCase {
    /// The single-layer shapes of `../shared/bench/bench_torch.py` (kernel 3, padding 1):
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

    static func convPair(_ prefix: String, _ g: ConvGeometry) -> [BenchCase] {
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

extension BenchCase {
    /// The resampling layers of a U-Net at 64³ (N = 1): `strided3d/down/16-32/64/...` kernel 2
    /// stride 2 (VoxelMorph/BasicUNet style), `strided3d/down3/16-32/64/...` kernel 3 stride 2
    /// padding 1 (MONAI UNet), and `strided3d/up/32-16/32/...`, the kernel-2 stride-2
    /// transposed convolution 32³ × 32 → 64³ × 16, whose forward is `Convolution.backwardData`
    /// and whose input gradient is `Convolution.forward`.
    static var stridedConvCases: [BenchCase] {
        let down = ConvGeometry.cubic(cin: 16, cout: 32, size: (64, 64, 64), kernel: 2, stride: 2, padding: 0)
        let down3 = ConvGeometry.cubic(cin: 16, cout: 32, size: (64, 64, 64), kernel: 3, stride: 2, padding: 1)
        var cases = convPair("strided3d/down/16-32/64", down) + convPair("strided3d/down3/16-32/64", down3)
        // The transposed convolution is described as the convolution it transposes: input = the
        // 64³ × 16 grid it produces, output = its 32³ × 32 input.
        let up = down
        cases.append(BenchCase(name: "strided3d/up/32-16/32/fwd", flops: up.flops) {
            let x = BenchBuffer(random: up.outputCount, seed: 1)
            let w = BenchBuffer(random: up.weightCount, seed: 2)
            let y = BenchBuffer(zeros: up.inputCount)
            return { Convolution.backwardData(up, gradOutput: x.pointer, weight: w.pointer, gradInput: y.pointer) }
        })
        cases.append(BenchCase(name: "strided3d/up/32-16/32/fwdbwd", flops: 3 * up.flops) {
            let x = BenchBuffer(random: up.outputCount, seed: 1)
            let w = BenchBuffer(random: up.weightCount, seed: 2)
            let y = BenchBuffer(zeros: up.inputCount)
            let gy = BenchBuffer(random: up.inputCount, seed: 3)
            let gx = BenchBuffer(zeros: up.outputCount)
            let gw = BenchBuffer(zeros: up.weightCount)
            return {
                Convolution.backwardData(up, gradOutput: x.pointer, weight: w.pointer, gradInput: y.pointer)
                Convolution.forward(up, input: gy.pointer, weight: w.pointer, bias: nil, output: gx.pointer)
                Convolution.backwardWeight(up, input: gy.pointer, gradOutput: x.pointer, gradWeight: gw.pointer, gradBias: nil)
            }
        })
        return cases
    }
}
