import BundleCore
import BundleStore
import BundleStoreS3
import Foundation
import Testing
import TestSupport

/// The three `ObjectStore` backends every conformance test runs against.
///
/// S3 talks to the real SeaweedFS server that `scripts/s3-server.sh` starts (credentials
/// enforced), configured by `EXTBUNDLES_S3_*`. Without those variables the S3 cases are left out
/// on a developer machine, and fail in CI (`CI=true`): they never silently skip there.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory
    case filesystem
    case s3

    var testDescription: String { rawValue }

    static var environment: [String: String] { ProcessInfo.processInfo.environment }
    static var s3Configured: Bool { environment["EXTBUNDLES_S3_ENDPOINT"] != nil }
    static var s3Required: Bool { environment["CI"] == "true" }

    /// The backends to run: S3 only when configured or required.
    static var available: [Backend] {
        s3Configured || s3Required ? allCases : [.memory, .filesystem]
    }

    /// The S3 configuration from `EXTBUNDLES_S3_*`, under a fresh key prefix so tests never meet.
    static func s3Configuration(prefix: String? = nil) throws -> S3ObjectStore.Configuration {
        guard let endpoint = environment["EXTBUNDLES_S3_ENDPOINT"], let url = URL(string: endpoint) else {
            throw S3NotConfigured()
        }
        return S3ObjectStore.Configuration(
            endpoint: url, region: environment["EXTBUNDLES_S3_REGION"] ?? "us-east-1",
            bucket: environment["EXTBUNDLES_S3_BUCKET"] ?? "extbundles-test",
            credentials: .init(
                accessKeyID: environment["EXTBUNDLES_S3_ACCESS_KEY"] ?? "",
                secretAccessKey: environment["EXTBUNDLES_S3_SECRET_KEY"] ?? ""),
            keyPrefix: prefix ?? "t-\(UUID().uuidString.lowercased())/")
    }

    /// A fresh, empty store.
    func make() throws -> StoreFixture {
        switch self {
        case .memory:
            return StoreFixture(store: InMemoryObjectStore(), folder: nil)
        case .filesystem:
            let folder = try TestSupport.makeTemporaryDirectory("store")
            return StoreFixture(store: try FileSystemObjectStore(root: folder + "/root"), folder: folder)
        case .s3:
            return StoreFixture(store: try S3ObjectStore(configuration: try Self.s3Configuration()), folder: nil)
        }
    }
}

/// A store under test and what to remove after it.
final class StoreFixture: Sendable {
    let store: any ObjectStore
    let folder: String?

    init(store: any ObjectStore, folder: String?) {
        self.store = store
        self.folder = folder
    }

    deinit { if let folder { try? FileManager.default.removeItem(atPath: folder) } }
}

struct S3NotConfigured: Error, CustomStringConvertible {
    var description: String {
        "the S3 tests need the server of scripts/s3-server.sh (EXTBUNDLES_S3_* are not set); run scripts/test.sh"
    }
}

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
