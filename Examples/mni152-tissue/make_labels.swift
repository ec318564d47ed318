// Grey/white-matter labels for the MNI ICBM152 2009a template: per voxel the argmax of
// (background, GM, WM), where GM and WM are the template's probability maps (×255) and
// background = 255 − GM − WM. Writes a uint8 NIfTI-1 label map on the template's grid
// (header copied from the GM map) and a manifest for `morphoseg train`.
//
// Usage: swift Examples/mni152-tissue/make_labels.swift MNI_DIR OUT_DIR
// Needs only Foundation and the `gzip` command (the maps are uint8 .nii.gz files).
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

/// Header bytes and uint8 voxels of a little-endian NIfTI-1 uint8 file.
func readUInt8NIfTI(_ path: String) -> (header: [UInt8], voxels: [UInt8]) {
    let bytes = [UInt8](run(["gzip", "-dc", path]))
    func int16(_ o: Int) -> Int { Int(Int16(bitPattern: UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8)) }
    func float32(_ o: Int) -> Float {
        Float(bitPattern: UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24)
    }
    guard bytes.count > 352, bytes[0] == 92, bytes[1] == 1 else { fatalError("\(path): not a little-endian NIfTI-1 file") }
    guard int16(70) == 2 else { fatalError("\(path): expected uint8 voxels (datatype 2), got \(int16(70))") }
    let dims = (1...3).map { int16(40 + 2 * $0) }
    let offset = Int(float32(108))
    let count = dims.reduce(1, *)
    guard bytes.count >= offset + count else { fatalError("\(path): truncated") }
    return (Array(bytes[0..<offset]), Array(bytes[offset..<(offset + count)]))
}

let args = CommandLine.arguments
guard args.count == 3 else {
    FileHandle.standardError.write(Data("usage: swift make_labels.swift MNI_DIR OUT_DIR\n".utf8))
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
try run(["gzip", "-n", "-c"], input: Data(header + labels)).write(to: URL(fileURLWithPath: file))
// Manifest paths are relative to the manifest's folder: the label sits next to it, the T1 is absolute.
let t1 = URL(fileURLWithPath: "\(mni)/" + String(format: stem, "t1")).standardizedFileURL.path
let manifest = "t1,label\n\(t1),mni152_tissue_labels.nii.gz\n"
try manifest.write(toFile: "\(out)/manifest.csv", atomically: true, encoding: .utf8)
print("wrote \(file) (background \(counts[0]), GM \(counts[1]), WM \(counts[2]) voxels) and \(out)/manifest.csv")
