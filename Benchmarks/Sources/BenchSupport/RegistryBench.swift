public import BundleArchive
public import BundleCore
public import BundleStore
public import ExtensionHost
import Foundation
public import RegistryV2
public import RegistryV2SQLite

/// The registry's two hot paths, shared by the package-benchmark target and `archive-bench`:
/// resolving a tenant's install to a content hash on SQLite (the runner's and the gateway's
/// question on every request), and publishing (finalize) a bundle that is already stored.
public enum RegistryBench {
    /// A host on an SQLite file with `extensions` extensions, each installed for `tenants`
    /// tenants; returns the host and the (tenant, extension id) pairs to resolve.
    public static func resolveFixture(path: String, extensions: Int = 100, tenants: Int = 10, cached: Bool = true) async throws
        -> (host: ExtensionHost, pairs: [(String, String)])
    {
        try? FileManager.default.removeItem(atPath: path)
        let registry = try SQLiteRegistryBackend(path: path)
        let host = ExtensionHost(
            store: try BundleStore(objects: InMemoryObjectStore()), registry: registry, configuration: .init(resolveCacheTTL: cached ? 0.25 : 0))
        var pairs: [(String, String)] = []
        for index in 0..<extensions {
            let record = try await registry.ensureExtension(publisher: "Bench", name: "com.bench.e\(index)", now: Date())
            let hash = ContentHash.of(Array("bundle-\(index)".utf8))
            let version = VersionRecord(extensionID: record.id, version: "1.0.0", runtime: "wasm-js@1", contentHash: hash, size: 1_000)
            try await registry.insertVersion(version, bundle: BundleRecord(versionID: version.id, contentHash: hash, size: 1_000))
            for tenant in 0..<tenants {
                try await host.install(record.id, tenant: "tenant-\(tenant)")
                pairs.append(("tenant-\(tenant)", record.id))
            }
        }
        return (host, pairs)
    }

    /// A small bundle (manifest, a 4 KiB module, a UI page) and an in-memory host where it is
    /// already stored; `stage` puts a fresh staging copy of it and returns the key.
    public static func publishFixture() async throws -> (host: ExtensionHost, bytes: [UInt8]) {
        let root = NSTemporaryDirectory() + "extbundles-publish-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/dist", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/ui", withIntermediateDirectories: true)
        try Data(#"{"name":"com.bench.publish","publisher":"Bench","version":"1.0.0","runtime":"wasm-js@1"}"#.utf8)
            .write(to: URL(fileURLWithPath: root + "/manifest.json"))
        try Data(benchRandomBytes(4_096, seed: 7)).write(to: URL(fileURLWithPath: root + "/dist/main.wasm"))
        try Data("<!doctype html><title>bench</title>".utf8).write(to: URL(fileURLWithPath: root + "/ui/index.html"))
        var bytes: [UInt8] = []
        _ = try BundlePacker.pack(directory: root, configuration: .init(zstd: .init(level: 3, workers: 1))) { bytes.append(contentsOf: $0) }
        let store = try BundleStore(objects: InMemoryObjectStore())
        _ = try await store.putBundle(.bytes(bytes), expected: ContentHash.of(bytes))
        return (ExtensionHost(store: store, registry: InMemoryRegistryBackend()), bytes)
    }

    /// Stages a copy of `bytes` for a finalize.
    public static func stage(_ host: ExtensionHost, _ bytes: [UInt8]) async throws -> String {
        try await host.store.stageBundle(.bytes(bytes), length: Int64(bytes.count)).key
    }

    /// Finalizes a staged copy as version `1.0.<n>` of one of 100 extensions (the manifest is given
    /// in the request, so the stored bytes, and their hash, stay the same).
    public static func finalize(_ host: ExtensionHost, key: String, n: Int) async throws {
        let manifest = #"{"name":"com.bench.p\#(n % 100)","publisher":"Bench","version":"1.0.\#(n / 100)","runtime":"wasm-js@1"}"#
        _ = try await host.finalize(FinalizeRequest(key: key, manifestJson: manifest))
    }
}
