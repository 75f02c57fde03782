import BundleCore
import BundleStore
import ExtBundlesTesting
import Foundation
@_exported import StoreTestSupport

/// A byte stream that fails after `bytes` bytes, to test that a failed write leaves nothing.
func failingStream(after bytes: [UInt8]) -> ByteStream { Conformance.failingStream(after: bytes) }

typealias InjectedFailure = Conformance.InjectedFailure

/// Reads a whole object.
func contents(_ store: any ObjectStore, _ key: String) async throws -> [UInt8] {
    try await store.bytes(key, limit: 256 << 20)
}
