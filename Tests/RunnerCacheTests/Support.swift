import BundleArchive
import BundleCore
import BundleStore
import BundleVerify
import ExtBundlesTesting
import Foundation
import MetricsTestKit
import RunnerCache
import StoreTestSupport
import TestSupport

/// A packed bundle for the cache tests.
struct CacheBundle {
    let bytes: [UInt8]
    let hash: ContentHash
    let mainWasm: [UInt8]
    let index: [UInt8]

    /// `folder` puts everything one folder down (`ext/manifest.json`, `ext/ui/...`).
    init(seed: UInt64 = 1, wasmBytes: Int = 40_000, withModule: Bool = true, withUI: Bool = true, folder: String = "", bigPNG: Int = 0) throws {
        let scratch = try TestSupport.makeTemporaryDirectory("cache-bundle")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let base = "src/" + folder
        mainWasm = TestSupport.randomBytes(wasmBytes, seed: seed)
        index = Array("<!doctype html><title>\(seed)</title>".utf8)
        try TestSupport.write(Array(#"{"name":"com.acme.cache","publisher":"Acme","version":"1.0.\#(seed)","runtime":"wasm-js@1"}"#.utf8), to: base + "manifest.json", in: scratch)
        if withModule { try TestSupport.write(mainWasm, to: base + "dist/main.wasm", in: scratch) }
        if withUI {
            try TestSupport.write(index, to: base + "ui/index.html", in: scratch)
            try TestSupport.write(Array("console.log(\(seed))".utf8), to: base + "ui/assets/app.js", in: scratch)
            try TestSupport.write(Array("body{}".utf8), to: base + "ui/assets/site.css", in: scratch)
            if bigPNG > 0 { try TestSupport.write(TestSupport.randomBytes(bigPNG, seed: seed + 100), to: base + "ui/assets/big.png", in: scratch) }
        }
        var out: [UInt8] = []
        _ = try BundlePacker.pack(directory: scratch + "/src", configuration: .init(zstd: .init(level: 3))) { out.append(contentsOf: $0) }
        bytes = out
        hash = ContentHash.of(out)
    }
}

/// An object store that counts GETs of bundles.
typealias CountingStore = CountingObjectStore

/// A cache over a fresh store of the given backend, in a fresh folder.
final class CacheFixture: @unchecked Sendable {
    let storeFixture: StoreFixture
    let objects: CountingStore
    let store: BundleStore
    let folder: String
    let metrics = TestMetrics()

    init(_ backend: Backend = .memory) throws {
        storeFixture = try backend.make()
        objects = CountingStore(base: storeFixture.store)
        store = try BundleStore(objects: objects)
        folder = try TestSupport.makeTemporaryDirectory("cache")
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    var root: String { folder + "/root" }

    /// The cache's clock; tests move it forward.
    let clock = LockedValue(Date(timeIntervalSince1970: 1_800_000_000))

    func cache(
        maxBytes: Int64 = 1 << 30, negativeTTL: TimeInterval = 10, negativeCapacity: Int = 10_000, verifier: any Verifier = StreamingBundleVerifier(trust: nil)
    ) throws -> DiskModuleCache {
        let clock = self.clock
        return try DiskModuleCache(
            root: root, store: store, verifier: verifier,
            configuration: .init(
                maxBytes: maxBytes, negativeTTL: negativeTTL, negativeCapacity: negativeCapacity, metricsFactory: metrics,
                now: { clock.withLock { $0 } }))
    }

    @discardableResult
    func publish(_ bundle: CacheBundle) async throws -> ContentHash {
        try await store.putBundle(.bytes(bundle.bytes), expected: bundle.hash).hash
    }

    /// The names in the cache root (but its marker).
    func names() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0 != ".extbundles-cache" }.sorted() }

    func counter(_ name: String) -> Int64 { (try? metrics.expectCounter("extbundles_cache_\(name)_total").totalValue) ?? 0 }
}
