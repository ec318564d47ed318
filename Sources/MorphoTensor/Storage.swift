import Foundation

/// The float buffer behind a `Tensor`: 64-byte aligned (one cache line, one AVX-512 vector),
/// returned to `StoragePool` when the last tensor referring to it goes away. Tensors share a
/// storage until one of them writes (copy-on-write, see `Tensor.withUnsafeMutablePointer`).
public final class TensorStorage: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// Uninitialised storage of `count` floats; callers must write every element.
    public init(uninitializedCount count: Int) {
        self.count = count
        pointer = StoragePool.take(count)
    }

    public convenience init(repeating value: Float, count: Int) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    public func copy() -> TensorStorage {
        let s = TensorStorage(uninitializedCount: count)
        s.pointer.update(from: pointer, count: count)
        return s
    }

    deinit { StoragePool.give(pointer, count) }
}

/// Recycles large buffers by exact size. A training step allocates the same activation and
/// gradient shapes every iteration; handing a freed buffer back to the next request of that size
/// avoids a fresh `mmap` and its page faults for every large tensor (measured at 14–19 % of a
/// 3D U-Net step's CPU time without it). Only buffers of at least `minimumBytes` are pooled, the
/// pool holds at most `capacityBytes`, and small buffers go straight to the allocator.
///
/// Buffers of at least `HugePages.minimumBytes` are mapped on 2 MiB boundaries and advised as
/// transparent huge pages (`MADV_HUGEPAGE`): a full-resolution activation (160×192×224 × 32
/// channels, 880 MB) then costs 440 page faults instead of ~225,000, and the conv kernels walk
/// it with 512× fewer TLB entries. Where the kernel declines huge pages the mapping still works
/// with 4 KiB pages.
///
/// `liveBytes` / `peakLiveBytes` count the bytes held by tensors (not idle pool buffers): what a
/// step really needs, independent of the allocator.
public enum StoragePool {
    /// Buffers below this size are not worth pooling (malloc serves them from its own arenas).
    public static let minimumBytes = 256 << 10
    /// Most bytes kept idle in the pool; beyond it freed buffers are released. Default: a quarter
    /// of physical memory, at least 1 GiB (6 GiB on a 24 GiB machine, which keeps a
    /// full-resolution 3D registration step's buffers mapped from one step to the next: 16 s
    /// instead of 28 s per step on this kind of virtual machine, where re-touching released
    /// memory costs a host fault per page). `MORPHOSEG_POOL_MB` overrides it, trading speed for
    /// resident memory (0 turns pooling off).
    nonisolated(unsafe) public static var capacityBytes: Int = {
        if let text = ProcessInfo.processInfo.environment["MORPHOSEG_POOL_MB"], let mb = Int(text), mb >= 0 { return mb << 20 }
        return max(1 << 30, Int(ProcessInfo.processInfo.physicalMemory / 4))
    }()

    /// Bound on the pooled-size bytes mapped at once (held by tensors plus idle), as a multiple
    /// of the most bytes tensors have held at once (`peakLiveBytes`), at least `capacityFloor`.
    /// Best fits of up to twice a request and idle buffers of sizes no later request takes
    /// otherwise let the mapped total drift well past what a step needs (a full-resolution 3D
    /// registration step: 4.8 GB of tensors, 6.9 GB resident); when a fresh buffer would cross
    /// the bound, idle buffers are released first, largest first. `MORPHOSEG_POOL_HEADROOM`
    /// overrides the factor (0 turns the bound off); `minimumSlack` keeps small peaks from
    /// getting too tight a bound.
    nonisolated(unsafe) public static var headroom: Double = {
        if let text = ProcessInfo.processInfo.environment["MORPHOSEG_POOL_HEADROOM"], let h = Double(text), h >= 0 { return h }
        return 1.125
    }()
    /// The bound is never below this (small runs keep their whole pool).
    nonisolated(unsafe) public static var capacityFloor = 1 << 30
    /// Nor less than this above the peak: a 12.5 % margin over a 2.1 GB inference pass
    /// (full-resolution registration) left too little room for its two 880 MB and two 110 MB
    /// buffers, so each call released and re-mapped about 1 GB (page faults were 11 % of its
    /// time). Larger peaks, such as the 4.8 GB training step, keep the `headroom` factor.
    /// `MORPHOSEG_POOL_SLACK_MB` overrides it.
    nonisolated(unsafe) public static var minimumSlack: Int = {
        if let text = ProcessInfo.processInfo.environment["MORPHOSEG_POOL_SLACK_MB"], let mb = Int(text), mb >= 0 { return mb << 20 }
        return 512 << 20
    }()

    nonisolated(unsafe) private static var idle: [Int: [UnsafeMutableRawPointer]] = [:]
    /// Pooled-size bytes held by tensors (real buffer sizes).
    nonisolated(unsafe) private static var pooledLive = 0
    nonisolated(unsafe) private static var idleBytes = 0
    /// Real size of every pooled-size buffer now held by a tensor (it may exceed the tensor's bytes).
    nonisolated(unsafe) private static var bufferBytes: [UnsafeMutableRawPointer: Int] = [:]
    nonisolated(unsafe) private static var live = 0
    nonisolated(unsafe) private static var peakLive = 0
    private static let lock = NSLock()

    static func bytes(_ count: Int) -> Int { max(count, 1) * MemoryLayout<Float>.stride }

    /// A request of `size` bytes takes an idle buffer of exactly that size, else the smallest idle
    /// one of at most twice the size: steps whose tensor sizes vary (a decoder's 16- and
    /// 32-channel activations) then reuse already-mapped memory instead of mapping fresh pages,
    /// which on a virtual machine also cost a fault in the host.
    static func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let size = bytes(count)
        lock.lock()
        live += size
        if live > peakLive {
            peakLive = live
            if traceStepBytes > 0 && live >= tracedPeak + traceStepBytes { tracePeak(live, request: size, buffers: bufferBytes.values) }
        }
        guard size >= minimumBytes else {
            lock.unlock()
            return allocate(size).bindMemory(to: Float.self, capacity: max(count, 1))
        }
        var fit = idle[size]?.isEmpty == false ? size : nil
        if fit == nil {
            for (s, list) in idle where s > size && s <= 2 * size && !list.isEmpty && s < (fit ?? .max) { fit = s }
        }
        if let fit, let raw = idle[fit]?.popLast() {
            idleBytes -= fit
            bufferBytes[raw] = fit
            pooledLive += fit
            lock.unlock()
            return raw.bindMemory(to: Float.self, capacity: max(count, 1))
        }
        let surplus = releasableIdle(toFit: size)
        pooledLive += size
        lock.unlock()
        for (raw, bytes) in surplus { release(raw, bytes) }
        let raw = allocate(size)
        lock.lock()
        bufferBytes[raw] = size
        lock.unlock()
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    static func give(_ pointer: UnsafeMutablePointer<Float>, _ count: Int) {
        let size = bytes(count)
        let raw = UnsafeMutableRawPointer(pointer)
        lock.lock()
        live -= size
        guard size >= minimumBytes else {
            lock.unlock()
            release(raw, size)
            return
        }
        let real = bufferBytes.removeValue(forKey: raw) ?? size
        pooledLive -= real
        if idleBytes + real <= capacityBytes {
            idle[real, default: []].append(raw)
            idleBytes += real
            lock.unlock()
            return
        }
        lock.unlock()
        release(raw, real)
    }

    /// Idle buffers to release (taken out of the pool; the caller releases them after unlocking)
    /// so that a fresh buffer of `size` bytes keeps the mapped total within the `headroom` bound.
    /// Called with the lock held.
    private static func releasableIdle(toFit size: Int) -> [(UnsafeMutableRawPointer, Int)] {
        guard headroom > 0 else { return [] }
        let peak = max(peakLive, live)
        let bound = max(capacityFloor, Int(headroom * Double(peak)), peak + minimumSlack)
        var excess = pooledLive + idleBytes + size - bound
        var out: [(UnsafeMutableRawPointer, Int)] = []
        while excess > 0, let largest = idle.keys.filter({ idle[$0]?.isEmpty == false }).max(), let raw = idle[largest]?.popLast() {
            idleBytes -= largest
            excess -= largest
            out.append((raw, largest))
        }
        return out
    }

    /// A fresh 64-byte aligned buffer of `size` bytes: huge-page mapped when large enough.
    /// `release` chooses the matching path from the size alone.
    private static func allocate(_ size: Int) -> UnsafeMutableRawPointer {
        if HugePages.enabled && size >= HugePages.minimumBytes { return HugePages.map(size) }
        return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
    }

    private static func release(_ raw: UnsafeMutableRawPointer, _ size: Int) {
        if HugePages.enabled && size >= HugePages.minimumBytes {
            HugePages.unmap(raw, size)
        } else {
            raw.deallocate()
        }
    }

    /// Releases every idle buffer (e.g. between benchmark cases, so each one's peak RSS is its own).
    public static func drain() {
        lock.lock()
        let all = idle.flatMap { size, list in list.map { (size, $0) } }
        idle = [:]
        idleBytes = 0
        lock.unlock()
        for (size, raw) in all { release(raw, size) }
    }

    /// Bytes currently held idle.
    public static var idleByteCount: Int {
        lock.lock(); defer { lock.unlock() }
        return idleBytes
    }

    /// Bytes currently held by live tensor storages.
    public static var liveBytes: Int {
        lock.lock(); defer { lock.unlock() }
        return live
    }

    /// The most bytes live tensor storages held at once since the last `resetPeak()`.
    public static var peakLiveBytes: Int {
        lock.lock(); defer { lock.unlock() }
        return peakLive
    }

    /// Starts a new peak measurement from the bytes live now.
    public static func resetPeak() {
        lock.lock(); defer { lock.unlock() }
        peakLive = live
        tracedPeak = live
    }
}

/// Anonymous mappings aligned to 2 MiB and advised as transparent huge pages (Linux only).
/// The returned pointer is the mapping's base; its length is recomputed from the size on unmap.
enum HugePages {
    #if os(Linux)
    static let enabled = true
    #else
    static let enabled = false
    #endif
    /// Buffers from this size up are huge-page mapped (smaller ones would waste most of a 2 MiB page).
    static let minimumBytes = 4 << 20
    static let pageBytes = 2 << 20

    static func length(_ size: Int) -> Int { (size + pageBytes - 1) / pageBytes * pageBytes }

    /// A 2 MiB aligned, zero-filled mapping of at least `size` bytes. Traps when the system has
    /// no memory left for it (as the allocator would).
    static func map(_ size: Int) -> UnsafeMutableRawPointer {
        #if os(Linux)
        let len = length(size)
        // Over-map by one huge page, then trim the unaligned head and the tail.
        guard let raw = mmap(nil, len + pageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != MAP_FAILED else {
            fatalError("out of memory: cannot map a tensor buffer of \(size >> 20) MiB")
        }
        let address = UInt(bitPattern: raw)
        let aligned = (address + UInt(pageBytes) - 1) / UInt(pageBytes) * UInt(pageBytes)
        let head = Int(aligned - address)
        if head > 0 { munmap(raw, head) }
        let base = UnsafeMutableRawPointer(bitPattern: aligned)!
        if pageBytes - head > 0 { munmap(base + len, pageBytes - head) }
        _ = madvise(base, len, 14)  // MADV_HUGEPAGE
        return base
        #else
        fatalError("huge-page mappings are Linux-only")
        #endif
    }

    static func unmap(_ base: UnsafeMutableRawPointer, _ size: Int) {
        #if os(Linux)
        munmap(base, length(size))
        #endif
    }
}
