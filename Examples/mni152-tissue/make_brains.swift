// A dozen-brain dataset at 2 mm for `morphoseg plan` (issue 28's second target), made from the one
// MNI152 template: each case is the T1 and its GM/WM labels (make_labels.swift's rule) resampled to
// 2 mm through its own random smooth deformation, with its own contrast. Laid out as an nnU-Net v2
// dataset:
//
//     OUT_DIR/dataset.json                        channel T1; labels background, GM, WM
//     OUT_DIR/imagesTr/brain_000_0000.nii.gz …    TRAIN cases (default 12), labels in labelsTr
//     OUT_DIR/imagesTs/brain_100_0000.nii.gz …    TEST cases (default 3), references in labelsTs
//
// Per case (seeded by its index, so the dataset is the same on every machine):
//   - an affine part: scaling 0.9–1.1 per axis, rotation up to ±8° about each axis, shift ±4 mm;
//   - a smooth displacement: uniform ±4 mm per axis on a 5 × 6 × 5 control grid over the brain,
//     trilinear between control points (at most about ±4 mm, varying over 40 mm);
//   - contrast: gamma 0.7–1.4 on [0, 1], a linear bias field of ±15 % across the brain, Gaussian
//     noise of 2 % of the range; T1 trilinear, labels nearest neighbour; 99 × 117 × 95 voxels of
//     2 mm with the template's world coordinates (sform), stored as uint8.
//
// Usage: swiftc -O Examples/mni152-tissue/make_brains.swift -o /tmp/make_brains && /tmp/make_brains MNI_DIR OUT_DIR [TRAIN TEST]
// (`swift make_brains.swift …` works too, in about a minute instead of seconds.) Needs Foundation and `gzip`.
import Foundation

func run(_ arguments: [String]) -> Data {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out
    try! p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { fatalError("\(arguments.joined(separator: " ")) failed") }
    return data
}

func int16(_ b: [UInt8], _ o: Int) -> Int { Int(Int16(bitPattern: UInt16(b[o]) | UInt16(b[o + 1]) << 8)) }
func float32(_ b: [UInt8], _ o: Int) -> Float {
    Float(bitPattern: UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24)
}
func setInt16(_ b: inout [UInt8], _ o: Int, _ v: Int) {
    let u = UInt16(bitPattern: Int16(v))
    b[o] = UInt8(u & 0xff)
    b[o + 1] = UInt8(u >> 8)
}
func setFloat32(_ b: inout [UInt8], _ o: Int, _ v: Float) {
    for k in 0..<4 { b[o + k] = UInt8((v.bitPattern >> (8 * UInt32(k))) & 0xff) }
}

/// Header bytes, size (x, y, z) and voxels of a little-endian uint8 NIfTI-1 file.
func readUInt8NIfTI(_ path: String) -> (header: [UInt8], dims: [Int], voxels: [UInt8]) {
    let bytes = [UInt8](run(["gzip", "-dc", path]))
    guard bytes.count > 352, bytes[0] == 92, bytes[1] == 1 else { fatalError("\(path): not a little-endian NIfTI-1 file") }
    guard int16(bytes, 70) == 2 else { fatalError("\(path): expected uint8 voxels (datatype 2)") }
    let dims = (1...3).map { int16(bytes, 40 + 2 * $0) }
    let offset = Int(float32(bytes, 108)), count = dims.reduce(1, *)
    guard bytes.count >= offset + count else { fatalError("\(path): truncated") }
    return (Array(bytes[0..<offset]), dims, Array(bytes[offset..<(offset + count)]))
}

/// Writes `bytes` gzip-compressed to `path` (.nii.gz): the plain file, then `gzip -n -f`.
func writeGzip(_ bytes: [UInt8], to path: String) {
    let plain = String(path.dropLast(3))
    try! Data(bytes).write(to: URL(fileURLWithPath: plain))
    _ = run(["gzip", "-n", "-f", plain])
}

/// SplitMix64: the same numbers on every platform.
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * Double(next() >> 11) / Double(1 << 53) }
    mutating func gaussian() -> Double {
        let u = max(uniform(0, 1), 1e-12), v = uniform(0, 1)
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}

let args = CommandLine.arguments
guard args.count == 3 || args.count == 5, args.count == 3 || (Int(args[3]) != nil && Int(args[4]) != nil) else {
    FileHandle.standardError.write(Data("usage: make_brains MNI_DIR OUT_DIR [TRAIN TEST]\n".utf8))
    exit(2)
}
let (mni, root) = (args[1], args[2])
let (trainCount, testCount) = args.count == 5 ? (Int(args[3])!, Int(args[4])!) : (12, 3)
let stem = "\(mni)/mni_icbm152_%@_tal_nlin_sym_09a_converted.nii.gz"
let t1 = readUInt8NIfTI(String(format: stem, "t1"))
let gm = readUInt8NIfTI(String(format: stem, "gm")), wm = readUInt8NIfTI(String(format: stem, "wm"))
guard t1.dims == gm.dims, gm.dims == wm.dims else { fatalError("the T1 and the tissue maps differ in size") }
guard int16(t1.header, 252) == 0 else { fatalError("expected qform_code 0 (the template has an sform only)") }
let (nx, ny, nz) = (t1.dims[0], t1.dims[1], t1.dims[2])
// make_labels.swift's rule: argmax of (background = 255 − GM − WM, GM, WM).
var labels = [UInt8](repeating: 0, count: gm.voxels.count)
for i in labels.indices {
    let g = Int(gm.voxels[i]), w = Int(wm.voxels[i]), b = max(0, 255 - g - w)
    labels[i] = g > b && g >= w ? 1 : (w > b && w > g ? 2 : 0)
}

// Output grid: 2 mm voxels; voxel (i, j, k) is at template voxel (2i + 0.5, 2j + 0.5, 2k + 0.5).
let (mx, my, mz) = ((nx + 1) / 2, (ny + 1) / 2, (nz + 1) / 2)
let centre = [Double(nx - 1) / 2, Double(ny - 1) / 2, Double(nz - 1) / 2]
func header(for source: [UInt8]) -> [UInt8] {
    var h = source
    for (a, n) in [mx, my, mz].enumerated() { setInt16(&h, 42 + 2 * a, n) }
    for a in 0..<3 { setFloat32(&h, 80 + 4 * a, 2) }  // pixdim[1…3]
    for row in 0..<3 {  // srow: columns × 2, origin moved to template voxel (0.5, 0.5, 0.5)
        let base = 280 + 16 * row
        var shift: Float = 0
        for c in 0..<3 {
            let v = float32(h, base + 4 * c)
            shift += 0.5 * v
            setFloat32(&h, base + 4 * c, 2 * v)
        }
        setFloat32(&h, base + 12, float32(h, base + 12) + shift)
        setFloat32(&h, 268 + 4 * row, float32(h, base + 12))
    }
    h[112..<116] = [0, 0, 0, 0]  // scl_slope 0: stored unscaled
    return h
}
let imageHeader = header(for: t1.header), labelHeader = header(for: gm.header)

func makeCase(_ index: Int) -> (image: [UInt8], labels: [UInt8]) {
    var rng = SplitMix(state: 0x4D4E_4931_3532 &+ UInt64(index) &* 0x1_0000_0001)
    // Affine about the centre, template voxel → template voxel (1 mm).
    let s = (0..<3).map { _ in rng.uniform(0.9, 1.1) }
    let r = (0..<3).map { _ in rng.uniform(-8, 8) * Double.pi / 180 }
    let t = (0..<3).map { _ in rng.uniform(-4, 4) }
    func rot(_ a: Int, _ th: Double) -> [[Double]] {
        var m = [[1.0, 0, 0], [0, 1, 0], [0, 0, 1]]
        let (i, j) = [(1, 2), (0, 2), (0, 1)][a]
        m[i][i] = cos(th); m[i][j] = -sin(th); m[j][i] = sin(th); m[j][j] = cos(th)
        return m
    }
    func mul(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
        (0..<3).map { i in (0..<3).map { j in (0..<3).map { a[i][$0] * b[$0][j] }.reduce(0, +) } }
    }
    var m = mul(mul(rot(0, r[0]), rot(1, r[1])), rot(2, r[2]))
    for i in 0..<3 { for j in 0..<3 { m[i][j] *= s[j] } }
    // Smooth displacement: control grid 5 × 6 × 5 over the template, ±4 mm per axis.
    let grid = [5, 6, 5]
    let control = (0..<(3 * grid.reduce(1, *))).map { _ in rng.uniform(-4, 4) }
    func displacement(_ p: [Double]) -> [Double] {
        let n = [nx, ny, nz]
        var f = [Double](repeating: 0, count: 3), i0 = [0, 0, 0]
        for a in 0..<3 {
            let u = min(max(p[a] / Double(n[a] - 1), 0), 1) * Double(grid[a] - 1)
            i0[a] = min(Int(u), grid[a] - 2)
            f[a] = u - Double(i0[a])
        }
        var d = [0.0, 0, 0]
        for corner in 0..<8 {
            let o = [corner & 1, (corner >> 1) & 1, corner >> 2]
            var w = 1.0
            for a in 0..<3 { w *= o[a] == 1 ? f[a] : 1 - f[a] }
            let c = ((i0[2] + o[2]) * grid[1] + (i0[1] + o[1])) * grid[0] + (i0[0] + o[0])
            for a in 0..<3 { d[a] += w * control[3 * c + a] }
        }
        return d
    }
    let gamma = rng.uniform(0.7, 1.4)
    let bias = (0..<3).map { _ in rng.uniform(-0.15, 0.15) }
    var image = [UInt8](repeating: 0, count: mx * my * mz), out = [UInt8](repeating: 0, count: mx * my * mz)
    func t1At(_ x: Int, _ y: Int, _ z: Int) -> Double {
        guard x >= 0, y >= 0, z >= 0, x < nx, y < ny, z < nz else { return 0 }
        return Double(t1.voxels[(z * ny + y) * nx + x])
    }
    for k in 0..<mz {
        for j in 0..<my {
            for i in 0..<mx {
                let q = [2 * Double(i) + 0.5, 2 * Double(j) + 0.5, 2 * Double(k) + 0.5]
                let c = (0..<3).map { q[$0] - centre[$0] }
                var p = [0.0, 0, 0]
                for a in 0..<3 {
                    let mc: Double = m[a][0] * c[0] + m[a][1] * c[1] + m[a][2] * c[2]
                    p[a] = centre[a] + t[a] + mc
                }
                let d = displacement(p)
                for a in 0..<3 { p[a] += d[a] }
                let f = p.map { floor($0) }
                let (x0, y0, z0) = (Int(f[0]), Int(f[1]), Int(f[2]))
                let (fx, fy, fz) = (p[0] - f[0], p[1] - f[1], p[2] - f[2])
                var v = 0.0
                for corner in 0..<8 {
                    let (ox, oy, oz) = (corner & 1, (corner >> 1) & 1, corner >> 2)
                    let w = (ox == 1 ? fx : 1 - fx) * (oy == 1 ? fy : 1 - fy) * (oz == 1 ? fz : 1 - fz)
                    if w > 0 { v += w * t1At(x0 + ox, y0 + oy, z0 + oz) }
                }
                let o = (k * my + j) * mx + i
                let (lx, ly, lz) = (Int(p[0].rounded()), Int(p[1].rounded()), Int(p[2].rounded()))
                if lx >= 0, ly >= 0, lz >= 0, lx < nx, ly < ny, lz < nz { out[o] = labels[(lz * ny + ly) * nx + lx] }
                guard v > 0 else { continue }  // outside the brain stays 0 (skull-stripped)
                let field: Double = 1 + bias[0] * c[0] / centre[0] + bias[1] * c[1] / centre[1] + bias[2] * c[2] / centre[2]
                let noise: Double = 255 * 0.02 * rng.gaussian()
                let value: Double = 255 * pow(v / 255, gamma) * field + noise
                image[o] = UInt8(min(255, max(1, value.rounded())))
            }
        }
    }
    return (image, out)
}

for folder in ["imagesTr", "labelsTr", "imagesTs", "labelsTs"] {
    try FileManager.default.createDirectory(atPath: "\(root)/\(folder)", withIntermediateDirectories: true)
}
for (split, indices) in [("Tr", Array(0..<trainCount)), ("Ts", Array(100..<(100 + testCount)))] {
    for index in indices {
        let (image, caseLabels) = makeCase(index)
        let id = String(format: "brain_%03d", index)
        writeGzip(imageHeader + image, to: "\(root)/images\(split)/\(id)_0000.nii.gz")
        writeGzip(labelHeader + caseLabels, to: "\(root)/labels\(split)/\(id).nii.gz")
    }
}
let description = """
    {
      "name": "MNI152Brains2mm",
      "description": "MNI ICBM152 2009a T1 at 2 mm, randomly deformed and re-contrasted per case (make_brains.swift); GM/WM from its probability maps",
      "channel_names": {"0": "T1"},
      "labels": {"background": 0, "GM": 1, "WM": 2},
      "numTraining": \(trainCount),
      "file_ending": ".nii.gz"
    }

    """
try description.write(toFile: "\(root)/dataset.json", atomically: true, encoding: .utf8)
print("wrote \(root): \(trainCount) training cases (imagesTr, labelsTr), \(testCount) test cases (imagesTs, references in labelsTs), \(mx) × \(my) × \(mz) voxels of 2 mm")
