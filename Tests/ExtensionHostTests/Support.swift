import BundleArchive
import BundleCore
import BundleStore
import BundleVerify
import ExtensionHost
import Foundation
import RegistryV2
import StoreTestSupport
import Testing
import TestSupport

/// A packed bundle with the given manifest fields.
func makeBundle(
    name: String = "com.acme.demo", publisher: String? = "Acme", version: String = "1.0.0",
    capabilities: [String] = ["cap:http.fetch", "custom.unknown", "CAP:LOG.EMIT"], manifest: String? = nil, seed: UInt64 = 1,
    includeManifest: Bool = true
) throws -> [UInt8] {
    let scratch = try TestSupport.makeTemporaryDirectory("host-bundle")
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let publisherField = publisher.map { "\"publisher\":\"\($0)\"," } ?? ""
    let caps = capabilities.map { "\"\($0)\"" }.joined(separator: ",")
    let text = manifest ?? """
        {"name":"\(name)",\(publisherField)"version":"\(version)","runtime":"wasm-js@1","capabilities":[\(caps)],
         "ui":{"type":"iframe","entry":"./ui//index.html","hooks":{"appMenu":{"label":" Demo "}}},
         "api":{"endpoints":[{"method":"get","path":".//api//status","handler":"./dist//main"}]}}
        """
    if includeManifest { try TestSupport.write(Array(text.utf8), to: "src/manifest.json", in: scratch) }
    try TestSupport.write(TestSupport.randomBytes(50_000, seed: seed), to: "src/dist/main.wasm", in: scratch)
    try TestSupport.write(Array("<html>\(seed)</html>".utf8), to: "src/ui/index.html", in: scratch)
    var bytes: [UInt8] = []
    _ = try BundlePacker.pack(directory: scratch + "/src", configuration: .init(zstd: .init(level: 3))) { bytes.append(contentsOf: $0) }
    return bytes
}

/// A host over a fresh store and registry, and what to clean up.
struct HostFixture: Sendable {
    let host: ExtensionHost
    let objects: any ObjectStore
    let registry: any RegistryBackend
    let storeFixture: StoreFixture
    let cleanup: @Sendable () -> Void

    init(
        store backend: Backend = .memory, registry fixture: RegistryFixture = .memory, trust: TrustBundle? = nil,
        configuration: ExtensionHost.Configuration = .init(), wrapStore: (any ObjectStore) -> any ObjectStore = { $0 },
        wrapRegistry: (any RegistryBackend) -> any RegistryBackend = { $0 }
    ) throws {
        storeFixture = try backend.make()
        let made = try fixture.make()
        objects = wrapStore(storeFixture.store)
        registry = wrapRegistry(made.backend)
        host = ExtensionHost(
            store: try BundleStore(objects: objects), registry: registry, verifier: StreamingBundleVerifier(trust: trust),
            configuration: configuration, now: { Date() })
        cleanup = made.cleanup
    }

    /// Uploads `bytes` to staging and returns the staging key.
    func upload(_ bytes: [UInt8]) async throws -> String {
        try await host.upload(UploadRequest(filename: "bundle.tar.zst", size: Int64(bytes.count)), body: .bytes(bytes, chunkSize: 16_384)).upload.key
    }

    /// Uploads and finalizes.
    func publish(_ bytes: [UInt8], manifestJson: String? = nil, signature: FinalizeRequest.SignatureField? = nil) async throws -> FinalizeResult {
        let key = try await upload(bytes)
        return try await host.finalize(FinalizeRequest(key: key, size: Int64(bytes.count), manifestJson: manifestJson, signature: signature))
    }

    /// Every key under the canonical prefix that is not staging.
    func canonicalKeys() async throws -> [String] {
        try await objects.listAll(prefix: "sha256/").map(\.key).filter { !$0.contains("/_staging/") }
    }

    /// Every staging key.
    func stagingKeys() async throws -> [String] { try await objects.listAll(prefix: "sha256/_staging/").map(\.key) }
}

/// Expects `body` to throw a ``HostError`` with this code and status; returns it.
@discardableResult
func expectHostError(
    _ code: ErrorCode, _ status: Int, _ message: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> HostError? {
    do {
        try await body()
        Issue.record("expected \(code) \(status), got success", sourceLocation: sourceLocation)
        return nil
    } catch let error as HostError {
        #expect(error.code == code, "\(error.debugDescription)", sourceLocation: sourceLocation)
        #expect(error.status == status, "\(error.debugDescription)", sourceLocation: sourceLocation)
        if let message { #expect(error.message == message, sourceLocation: sourceLocation) }
        return error
    } catch {
        Issue.record("expected HostError \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// An object store that fails chosen operations, to test what the pipeline leaves behind.
struct FaultyStore: ForwardingObjectStore {
    enum Fault: Sendable { case copy, copyDoesNothing, head, get, getNotFound, put, putNoSuchBucket, putManifest, delete }

    let base: any ObjectStore
    let faults: Set<Fault>

    static let failure = StoreError(code: .storeBackend, reason: "injected failure")

    func head(_ key: String) async throws -> ObjectInfo? {
        if faults.contains(.head) { throw Self.failure }
        return try await base.head(key)
    }

    func get(_ key: String, range: ByteRange?) async throws -> ObjectBody {
        if faults.contains(.get) { throw Self.failure }
        if faults.contains(.getNotFound) { throw StoreError.notFound(key) }
        return try await base.get(key, range: range)
    }

    func put(_ key: String, body: ByteStream, length: Int64?, condition: WriteCondition) async throws -> ObjectInfo {
        if faults.contains(.put) || (faults.contains(.putManifest) && key.hasSuffix("manifest.json")) { throw Self.failure }
        if faults.contains(.putNoSuchBucket) {
            throw StoreError(code: .storeNotFound, reason: "no such bucket", key: key, httpStatus: 404, backendCode: "NoSuchBucket")
        }
        return try await base.put(key, body: body, length: length, condition: condition)
    }

    func copy(from source: String, to destination: String, condition: WriteCondition, sourceETag: String?) async throws -> ObjectInfo {
        if faults.contains(.copy) { throw Self.failure }
        if faults.contains(.copyDoesNothing) { return ObjectInfo(key: destination, size: 0) }
        return try await base.copy(from: source, to: destination, condition: condition, sourceETag: sourceETag)
    }

    func delete(_ key: String) async throws {
        if faults.contains(.delete) { throw Self.failure }
        try await base.delete(key)
    }

}

/// A registry whose first `insertVersion` fails, as if the process died between the canonical
/// copy and the registry write.
actor InterruptedRegistry: RegistryBackend {
    let base: any RegistryBackend
    private var failuresLeft: Int
    /// Runs once, before the first insert goes through (another publisher taking the version).
    private var before: (@Sendable (VersionRecord) async throws -> Void)?

    init(_ base: any RegistryBackend, failures: Int = 1, before: (@Sendable (VersionRecord) async throws -> Void)? = nil) {
        self.base = base
        self.failuresLeft = failures
        self.before = before
    }

    func insertVersion(_ version: VersionRecord, bundle: BundleRecord) async throws {
        if failuresLeft > 0 {
            failuresLeft -= 1
            throw RegistryError(code: .registryBackend, reason: "injected crash before the registry write")
        }
        if let hook = before {
            before = nil
            try await hook(version)
        }
        try await base.insertVersion(version, bundle: bundle)
    }

    func ensureExtension(publisher: String, name: String, now: Date) async throws -> ExtensionRecord {
        try await base.ensureExtension(publisher: publisher, name: name, now: now)
    }
    func extensionRecord(id: String) async throws -> ExtensionRecord? { try await base.extensionRecord(id: id) }
    func extensionRecord(publisher: String, name: String) async throws -> ExtensionRecord? {
        try await base.extensionRecord(publisher: publisher, name: name)
    }
    func extensions(slug: String) async throws -> [ExtensionRecord] { try await base.extensions(slug: slug) }
    func extensions() async throws -> [ExtensionRecord] { try await base.extensions() }
    func version(id: String) async throws -> VersionRecord? { try await base.version(id: id) }
    func version(extensionID: String, version: String) async throws -> VersionRecord? {
        try await base.version(extensionID: extensionID, version: version)
    }
    func versions(extensionID: String) async throws -> [VersionRecord] { try await base.versions(extensionID: extensionID) }
    func bundles(versionID: String) async throws -> [BundleRecord] { try await base.bundles(versionID: versionID) }
    func saveInstall(_ install: InstallRecord, config: InstallConfigRecord) async throws -> InstallRecord {
        try await base.saveInstall(install, config: config)
    }
    func install(tenantID: String, extensionID: String) async throws -> InstallRecord? {
        try await base.install(tenantID: tenantID, extensionID: extensionID)
    }
    func installs(tenantID: String?) async throws -> [InstallRecord] { try await base.installs(tenantID: tenantID) }
    func setEnabled(tenantID: String, extensionID: String, _ isEnabled: Bool, now: Date) async throws -> InstallRecord? {
        try await base.setEnabled(tenantID: tenantID, extensionID: extensionID, isEnabled, now: now)
    }
    func deleteInstall(tenantID: String, extensionID: String) async throws -> Bool {
        try await base.deleteInstall(tenantID: tenantID, extensionID: extensionID)
    }
    func installConfig(installID: String) async throws -> InstallConfigRecord? { try await base.installConfig(installID: installID) }
}
