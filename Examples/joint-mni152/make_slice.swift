// One axial slice of the MNI ICBM152 2009a template at 2 mm, as a 2D NIfTI pair for the joint
// study: the T1 (float32) and its GM/WM label map (uint8; per 2 mm pixel the argmax of
// (background, GM, WM) after averaging the ×255 probability maps over the 2×2×2 block of 1 mm
// voxels, background = 255 − GM − WM, as in Examples/mni152-tissue/make_labels.swift). The T1 is
// averaged over the same block. The sform is the template's with the voxel axes scaled by 2 and
// the origin moved to the block centre, so the slice sits where it was in the template.
//
// Usage: swift Examples/joint-mni152/make_slice.swift MNI_DIR OUT_DIR [Z]
//   Z: the 1 mm slice index where the 2-voxel block starts (default 80: through the basal
//   ganglia and lateral ventricles). Writes OUT_DIR/mni_t1_slice.nii.gz, OUT_DIR/mni_seg_slice.nii.gz.
// Needs only Foundation and the `gzip` command.
import Foundation

func run(_ arguments: [String], input: Data? = nil) -> Data {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    let out = Pipe(), inPipe = Pipe()
    p.standardOutput = out
    if input != nil { p.standardInput = inPipe }
    try! p.run()
    if let input {
        inPipe.fileHandleForWriting.write(input)
        try! inPipe.fileHandleForWriting.close()
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { fatalError("\(arguments.joined(separator: " ")) failed") }
    return data
}

struct UInt8NIfTI {
    var header: [UInt8]
    var dims: [Int]
    var voxels: [UInt8]
}

/// Header bytes, dims and uint8 voxels of a little-endian NIfTI-1 uint8 file.
func readUInt8NIfTI(_ path: String) -> UInt8NIfTI {
    let bytes = [UInt8](run(["gzip", "-dc", path]))
    func int16(_ o: Int) -> Int { Int(Int16(bitPattern: UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8)) }
    func float32(_ o: Int) -> Float {
        Float(bitPattern: UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24)
    }
    guard bytes.count > 352, bytes[0] == 92, bytes[1] == 1 else { fatalError("\(path): not a little-endian NIfTI-1 file") }
    guard int16(70) == 2 else { fatalError("\(path): expected uint8 voxels (datatype 2), got \(int16(70))") }
    let slope = float32(112)
    guard slope == 0 || slope == 1, float32(116) == 0 else { fatalError("\(path): scaled voxels are not expected") }
    let dims = (1...3).map { int16(40 + 2 * $0) }
    let offset = Int(float32(108))
    let count = dims.reduce(1, *)
    guard bytes.count >= offset + count else { fatalError("\(path): truncated") }
    return UInt8NIfTI(header: Array(bytes[0..<348]), dims: dims, voxels: Array(bytes[offset..<(offset + count)]))
}

func putInt16(_ h: inout [UInt8], _ o: Int, _ v: Int) {
    let u = UInt16(bitPattern: Int16(v))
    h[o] = UInt8(u & 0xFF); h[o + 1] = UInt8(u >> 8)
}
func putFloat(_ h: inout [UInt8], _ o: Int, _ v: Float) {
    let u = v.bitPattern
    for k in 0..<4 { h[o + k] = UInt8((u >> (8 * UInt32(k))) & 0xFF) }
}
func getFloat(_ h: [UInt8], _ o: Int) -> Float {
    Float(bitPattern: UInt32(h[o]) | UInt32(h[o + 1]) << 8 | UInt32(h[o + 2]) << 16 | UInt32(h[o + 3]) << 24)
}

let args = CommandLine.arguments
guard args.count == 3 || args.count == 4 else {
    FileHandle.standardError.write(Data("usage: swift make_slice.swift MNI_DIR OUT_DIR [Z]\n".utf8))
    exit(2)
}
let (mni, out) = (args[1], args[2])
let z0 = args.count == 4 ? Int(args[3])! : 80
let stem = "mni_icbm152_%@_tal_nlin_sym_09a_converted.nii.gz"
let t1 = readUInt8NIfTI("\(mni)/" + String(format: stem, "t1"))
let gm = readUInt8NIfTI("\(mni)/" + String(format: stem, "gm"))
let wm = readUInt8NIfTI("\(mni)/" + String(format: stem, "wm"))
guard t1.dims == gm.dims, gm.dims == wm.dims else { fatalError("the T1 and the maps differ in size") }
let (nx, ny, nz) = (t1.dims[0], t1.dims[1], t1.dims[2])
guard z0 >= 0, z0 + 1 < nz else { fatalError("Z must be in 0..<\(nz - 1)") }
let (w, h) = (nx / 2, ny / 2)

var image = [Float](repeating: 0, count: w * h)
var labels = [UInt8](repeating: 0, count: w * h)
var counts = [0, 0, 0]
for y in 0..<h {
    for x in 0..<w {
        var sums: [Float] = [0, 0, 0]
        for dz in 0..<2 { for dy in 0..<2 { for dx in 0..<2 {
            let i = ((z0 + dz) * ny + (2 * y + dy)) * nx + (2 * x + dx)
            sums[0] += Float(t1.voxels[i]); sums[1] += Float(gm.voxels[i]); sums[2] += Float(wm.voxels[i])
        } } }
        let (t, g, wv) = (sums[0] / 8, sums[1] / 8, sums[2] / 8)
        let b = max(0, 255 - g - wv)
        let k = g > b && g >= wv ? 1 : (wv > b && wv > g ? 2 : 0)
        image[y * w + x] = t
        labels[y * w + x] = UInt8(k)
        counts[k] += 1
    }
}

/// The template header turned into a 2D one: dims [2, w, h, 1], pixdim × 2, the given datatype,
/// voxels right after the 352-byte header, no scaling, the sform of the 2 mm grid.
func header(datatype: Int, bitpix: Int) -> [UInt8] {
    var hd = gm.header
    for k in 0..<8 { putInt16(&hd, 40 + 2 * k, [2, w, h, 1, 1, 1, 1, 1][k]) }
    putInt16(&hd, 70, datatype)
    putInt16(&hd, 72, bitpix)
    for k in 1...3 { putFloat(&hd, 76 + 4 * k, 2 * getFloat(gm.header, 76 + 4 * k)) }
    putFloat(&hd, 108, 352)
    putFloat(&hd, 112, 1)
    putFloat(&hd, 116, 0)
    putInt16(&hd, 252, 0)  // qform_code: sform only, like the template
    // srow rows at 280, 296, 312: new voxel (i, j, 0) is the centre of old block (2i + ½, 2j + ½, z0 + ½).
    for r in 0..<3 {
        let row = (0..<4).map { getFloat(gm.header, 280 + 16 * r + 4 * $0) }
        let origin = row[0] * 0.5 + row[1] * 0.5 + row[2] * (Float(z0) + 0.5) + row[3]
        putFloat(&hd, 280 + 16 * r, 2 * row[0])
        putFloat(&hd, 280 + 16 * r + 4, 2 * row[1])
        putFloat(&hd, 280 + 16 * r + 8, 2 * row[2])
        putFloat(&hd, 280 + 16 * r + 12, origin)
    }
    return hd + [0, 0, 0, 0]  // the 4 extension bytes: no extensions
}

try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
var imageBytes = [UInt8](); imageBytes.reserveCapacity(4 * image.count)
for v in image { let u = v.bitPattern; for k in 0..<4 { imageBytes.append(UInt8((u >> (8 * UInt32(k))) & 0xFF)) } }
let t1File = "\(out)/mni_t1_slice.nii.gz", segFile = "\(out)/mni_seg_slice.nii.gz"
try run(["gzip", "-n", "-c"], input: Data(header(datatype: 16, bitpix: 32) + imageBytes)).write(to: URL(fileURLWithPath: t1File))
try run(["gzip", "-n", "-c"], input: Data(header(datatype: 2, bitpix: 8) + labels)).write(to: URL(fileURLWithPath: segFile))
print("wrote \(t1File) and \(segFile): \(w)×\(h) at 2 mm from 1 mm slices \(z0)–\(z0 + 1) "
      + "(background \(counts[0]), GM \(counts[1]), WM \(counts[2]) pixels)")
