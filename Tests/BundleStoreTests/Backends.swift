import BundleCore
import BundleStore
import Foundation
@_exported import StoreTestSupport

/// A byte stream that fails after `bytes` bytes, to test that a failed write leaves nothing.
func failingStream(after bytes: [UInt8]) -> ByteStream {
    let state = LockedValue(false)
    return ByteStream(unfolding: {
        if state.withLock({ sent in defer { sent = true }; return sent }) { throw InjectedFailure() }
        return bytes
    })
}

struct InjectedFailure: Error {}

/// Reads a whole object.
func contents(_ store: any ObjectStore, _ key: String) async throws -> [UInt8] {
    try await store.bytes(key, limit: 256 << 20)
}
