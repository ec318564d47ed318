// Grey/white-matter labels for the MNI ICBM152 2009a template: per voxel the argmax of
// (background, GM, WM), where GM and WM are the template's probability maps (×255) and
// background = 255 − GM − WM. Writes a uint8 NIfTI-1 label map on the template's grid
// (header copied from the GM map) and a manifest for `morphoseg train`.
//
// With a third argument it also lays the template out as an nnU-Net v2 dataset for
// `morphoseg plan`, holding out the same anterior block as config.yaml's validation
// (the last 30 % along y, y ≥ 163 of 233):
//
//     NNUNET_DIR/dataset.json                      channel T1; labels background, GM, WM
//     NNUNET_DIR/imagesTr/mni152_posterior_0000.nii.gz   T1 with y ≥ 163 cut away (197 × 163 × 189)
//     NNUNET_DIR/labelsTr/mni152_posterior.nii.gz
//     NNUNET_DIR/imagesTs/mni152_anterior_0000.nii.gz    the held-out block y ≥ 163 (197 × 70 × 189)
//     NNUNET_DIR/labelsTs/mni152_anterior.nii.gz         its reference labels (not read by plan/train)
//
// Both parts keep the template's world coordinates (the block's sform origin moves by 163 voxels
// along y).
//
// Usage: swift Examples/mni152-tissue/make_labels.swift MNI_DIR OUT_DIR [NNUNET_DIR]
// Needs only Foundation and the `gzip` command (the maps are uint8 .nii.gz files).
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

func int16(_ bytes: [UInt8], _ o: Int) -> Int { Int(Int16(bitPattern: UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8)) }
func float32(_ bytes: [UInt8], _ o: Int) -> Float {
    Float(bitPattern: UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24)
}
func setInt16(_ bytes: inout [UInt8], _ o: Int, _ v: Int) {
    let u = UInt16(bitPattern: Int16(v))
    bytes[o] = UInt8(u & 0xff)
    bytes[o + 1] = UInt8(u >> 8)
}
func setFloat32(_ bytes: inout [UInt8], _ o: Int, _ v: Float) {
    let u = v.bitPattern
    for k in 0..<4 { bytes[o + k] = UInt8((u >> (8 * UInt32(k))) & 0xff) }
}

/// Header bytes, size (x, y, z) and uint8 voxels of a little-endian NIfTI-1 uint8 file.
func readUInt8NIfTI(_ path: String) -> (header: [UInt8], dims: [Int], voxels: [UInt8]) {
    let bytes = [UInt8](run(["gzip", "-dc", path]))
    guard bytes.count > 352, bytes[0] == 92, bytes[1] == 1 else { fatalError("\(path): not a little-endian NIfTI-1 file") }
    guard int16(bytes, 70) == 2 else { fatalError("\(path): expected uint8 voxels (datatype 2), got \(int16(bytes, 70))") }
    let dims = (1...3).map { int16(bytes, 40 + 2 * $0) }
    let offset = Int(float32(bytes, 108))
    let count = dims.reduce(1, *)
    guard bytes.count >= offset + count else { fatalError("\(path): truncated") }
    return (Array(bytes[0..<offset]), dims, Array(bytes[offset..<(offset + count)]))
}

/// Writes `bytes` gzip-compressed to `path` (ending in .gz): the plain file first, then `gzip -n -f`
/// replaces it (piping megabytes through `run` would block once gzip's output pipe is full).
func writeGzip(_ bytes: [UInt8], to path: String) {
    precondition(path.hasSuffix(".gz"))
    let plain = String(path.dropLast(3))
    try! Data(bytes).write(to: URL(fileURLWithPath: plain))
    _ = run(["gzip", "-n", "-f", plain])
}

/// The slab `y0..<y1` of a uint8 volume (x fastest, then y, then z), with the header's size and
/// sform (and qform offset) moved so that every voxel keeps its world position.
func slabY(_ header: [UInt8], _ dims: [Int], _ voxels: [UInt8], _ y0: Int, _ y1: Int) -> [UInt8] {
    var h = header
    guard int16(h, 252) == 0 else { fatalError("expected qform_code 0 (the template has an sform only)") }
    setInt16(&h, 44, y1 - y0)
    for row in 0..<3 {  // srow_x, srow_y, srow_z: translation += column y · y0
        let base = 280 + 16 * row
        setFloat32(&h, base + 12, float32(h, base + 12) + float32(h, base + 4) * Float(y0))
        setFloat32(&h, 268 + 4 * row, float32(h, base + 12))  // qoffset mirrors the sform's origin
    }
    var out: [UInt8] = []
    out.reserveCapacity(dims[0] * (y1 - y0) * dims[2])
    for z in 0..<dims[2] {
        for y in y0..<y1 {
            let start = (z * dims[1] + y) * dims[0]
            out += voxels[start..<(start + dims[0])]
        }
    }
    return h + out
}

let args = CommandLine.arguments
guard args.count == 3 || args.count == 4 else {
    FileHandle.standardError.write(Data("usage: swift make_labels.swift MNI_DIR OUT_DIR [NNUNET_DIR]\n".utf8))
    exit(2)
}
let (mni, out) = (args[1], args[2])
let stem = "mni_icbm152_%@_tal_nlin_sym_09a_converted.nii.gz"
let gm = readUInt8NIfTI("\(mni)/" + String(format: stem, "gm"))
let wm = readUInt8NIfTI("\(mni)/" + String(format: stem, "wm"))
guard gm.voxels.count == wm.voxels.count else { fatalError("GM and WM maps differ in size") }

var labels = [UInt8](repeating: 0, count: gm.voxels.count)
var counts = [0, 0, 0]
for i in labels.indices {
    let g = Int(gm.voxels[i]), w = Int(wm.voxels[i]), b = max(0, 255 - g - w)
    let k = g > b && g >= w ? 1 : (w > b && w > g ? 2 : 0)
    labels[i] = UInt8(k)
    counts[k] += 1
}
try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
var header = gm.header
header[112..<116] = [0, 0, 0, 0]  // scl_slope 0: labels are stored unscaled
let file = "\(out)/mni152_tissue_labels.nii.gz"
writeGzip(header + labels, to: file)
// Manifest paths are relative to the manifest's folder: the label sits next to it, the T1 is absolute.
let t1Path = URL(fileURLWithPath: "\(mni)/" + String(format: stem, "t1")).standardizedFileURL.path
let manifest = "t1,label\n\(t1Path),mni152_tissue_labels.nii.gz\n"
try manifest.write(toFile: "\(out)/manifest.csv", atomically: true, encoding: .utf8)
print("wrote \(file) (background \(counts[0]), GM \(counts[1]), WM \(counts[2]) voxels) and \(out)/manifest.csv")

if args.count == 4 {
    let root = args[3]
    let t1 = readUInt8NIfTI(t1Path)
    guard t1.dims == gm.dims else { fatalError("the T1 and the GM map differ in size") }
    // config.yaml's validation: fraction 0.3 of the y axis, rounded, is the held-out block.
    let ny = t1.dims[1], cut = ny - Int((0.3 * Double(ny)).rounded())
    for folder in ["imagesTr", "labelsTr", "imagesTs", "labelsTs"] {
        try FileManager.default.createDirectory(atPath: "\(root)/\(folder)", withIntermediateDirectories: true)
    }
    writeGzip(slabY(t1.header, t1.dims, t1.voxels, 0, cut), to: "\(root)/imagesTr/mni152_posterior_0000.nii.gz")
    writeGzip(slabY(header, gm.dims, labels, 0, cut), to: "\(root)/labelsTr/mni152_posterior.nii.gz")
    writeGzip(slabY(t1.header, t1.dims, t1.voxels, cut, ny), to: "\(root)/imagesTs/mni152_anterior_0000.nii.gz")
    writeGzip(slabY(header, gm.dims, labels, cut, ny), to: "\(root)/labelsTs/mni152_anterior.nii.gz")
    let description = """
        {
          "name": "MNI152Tissue",
          "description": "MNI ICBM152 2009a T1; GM/WM from its probability maps; test = anterior block y >= \(cut)",
          "channel_names": {"0": "T1"},
          "labels": {"background": 0, "GM": 1, "WM": 2},
          "numTraining": 1,
          "file_ending": ".nii.gz"
        }

        """
    try description.write(toFile: "\(root)/dataset.json", atomically: true, encoding: .utf8)
    print("wrote \(root): training case y < \(cut) (imagesTr, labelsTr), test case y ≥ \(cut) (imagesTs, reference in labelsTs)")
}
