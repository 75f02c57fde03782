public import BundleCore
public import BundleStore
public import BundleStoreS3
import Foundation
import TestSupport
public import Testing

/// The three `ObjectStore` backends every conformance test runs against.
///
/// S3 talks to the real SeaweedFS server that `scripts/s3-server.sh` starts (credentials
/// enforced), configured by `EXTBUNDLES_S3_*`. Without those variables the S3 cases are left out
/// on a developer machine, and fail in CI (`CI=true`): they never silently skip there.
public enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory
    case filesystem
    case s3

    /// The name in test output.
    public var testDescription: String { rawValue }

    /// The process environment.
    public static var environment: [String: String] { ProcessInfo.processInfo.environment }
    /// Whether `EXTBUNDLES_S3_ENDPOINT` is set.
    public static var s3Configured: Bool { environment["EXTBUNDLES_S3_ENDPOINT"] != nil }
    /// Whether S3 must run (in CI).
    public static var s3Required: Bool { environment["CI"] == "true" }

    /// The backends to run: S3 only when configured or required.
    public static var available: [Backend] {
        s3Configured || s3Required ? allCases : [.memory, .filesystem]
    }

    /// The S3 configuration from `EXTBUNDLES_S3_*`, under a fresh key prefix so tests never meet.
    public static func s3Configuration(prefix: String? = nil) throws -> S3ObjectStore.Configuration {
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
    public func make() throws -> StoreFixture {
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
public final class StoreFixture: Sendable {
    /// The store.
    public let store: any ObjectStore
    /// The folder removed with the fixture.
    public let folder: String?

    /// Creates a fixture.
    public init(store: any ObjectStore, folder: String?) {
        self.store = store
        self.folder = folder
    }

    deinit { if let folder { try? FileManager.default.removeItem(atPath: folder) } }
}

public struct S3NotConfigured: Error, CustomStringConvertible {
    /// Creates the error.
    public init() {}
    /// Why.
    public var description: String {
        "the S3 tests need the server of scripts/s3-server.sh (EXTBUNDLES_S3_* are not set); run scripts/test.sh"
    }
}


/// A store that wraps another: every operation goes to `base` unless the conforming type
/// implements it itself (to count, fail or distort that operation in a test).
public protocol ForwardingObjectStore: ObjectStore {
    /// The wrapped store.
    var base: any ObjectStore { get }
}

extension ForwardingObjectStore {
    /// Forwards.
    public func head(_ key: String) async throws -> ObjectInfo? { try await base.head(key) }
    /// Forwards.
    public func get(_ key: String, range: ByteRange?) async throws -> ObjectBody { try await base.get(key, range: range) }
    /// Forwards.
    public func put(_ key: String, body: ByteStream, length: Int64?, condition: WriteCondition) async throws -> ObjectInfo {
        try await base.put(key, body: body, length: length, condition: condition)
    }
    /// Forwards.
    public func copy(from source: String, to destination: String, condition: WriteCondition, sourceETag: String?) async throws -> ObjectInfo {
        try await base.copy(from: source, to: destination, condition: condition, sourceETag: sourceETag)
    }
    /// Forwards.
    public func delete(_ key: String) async throws { try await base.delete(key) }
    /// Forwards.
    public func list(prefix: String, continuation: String?, limit: Int) async throws -> ObjectListing {
        try await base.list(prefix: prefix, continuation: continuation, limit: limit)
    }
}
