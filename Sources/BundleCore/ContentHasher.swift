public import Crypto

/// Streaming SHA-256 over any number of byte chunks, producing a ``ContentHash``.
///
/// Backed by swift-crypto (BoringSSL on Linux, which uses the CPU's SHA extensions where present),
/// so it runs at the speed of `openssl dgst -sha256`. Feed it chunks of 64 KiB or more for full speed.
public struct ContentHasher: Sendable {
    private var digest = SHA256()
    /// How many bytes have been hashed so far.
    public private(set) var byteCount: Int64 = 0

    /// Creates an empty hasher.
    public init() {}

    /// Adds `bytes` to the hash.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        digest.update(bufferPointer: bytes)
        byteCount += Int64(bytes.count)
    }

    /// Adds the bytes of an array (or any contiguous byte collection) to the hash.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The SHA-256 digest of everything added so far (what ECDSA signatures are verified against).
    public var digest256: SHA256.Digest { digest.finalize() }

    /// The hash of everything added so far. The hasher may keep being used afterwards.
    public func finalize() -> ContentHash {
        let digest = self.digest.finalize()
        // A SHA-256 digest always has 32 bytes, so this cannot fail.
        return try! ContentHash(digestBytes: Array(digest))
    }
}
