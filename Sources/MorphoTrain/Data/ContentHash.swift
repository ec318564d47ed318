import MorphoIO

/// A 64-bit FNV-1a hash of what a cached result depends on (text, volumes), for naming cache
/// files: equal inputs give equal names on every machine and run. Not cryptographic: it guards
/// against stale caches, not against an adversary.
struct ContentHash {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(bytes: UnsafeRawBufferPointer) {
        var h = value
        for byte in bytes {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        value = h
    }

    mutating func add(_ text: String) {
        var copy = text
        copy.withUTF8 { add(bytes: UnsafeRawBufferPointer($0)) }
        add(UInt64(text.utf8.count))
    }

    mutating func add(_ number: UInt64) {
        withUnsafeBytes(of: number.littleEndian) { add(bytes: $0) }
    }

    /// The voxels (bit patterns), the shape and the voxel-to-world affine.
    mutating func add(_ volume: Volume) {
        for n in [volume.channels, volume.depth, volume.height, volume.width] { add(UInt64(n)) }
        for row in volume.affine.matrix { for x in row { add(x.bitPattern) } }
        volume.data.withUnsafeBytes { add(bytes: $0) }
    }

    /// 16 lower-case hex digits.
    var hex: String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
