public import BundleArchive

/// Deterministic pseudo-random bytes (a 64-bit LCG), so every benchmark run sees the same data.
public func benchRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    var out = [UInt8](repeating: 0, count: count)
    for index in stride(from: 0, to: count, by: 8) {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        withUnsafeBytes(of: state.bigEndian) { word in
            for offset in 0..<min(8, count - index) { out[index + offset] = word[offset] }
        }
    }
    return out
}

/// A visitor that ignores everything: the walk's own cost.
public final class NullVisitor: ArchiveVisitor {
    /// Creates one.
    public init() {}
    /// Ignored.
    public func visitEntry(_ entry: ArchiveEntry) throws(ArchiveError) {}
    /// Ignored.
    public func visitData(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError) {}
    /// Ignored.
    public func visitEntryEnd() throws(ArchiveError) {}
}
