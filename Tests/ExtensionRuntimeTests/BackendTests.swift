import BundleArchive
import BundleCore
import BundleStore
import ExtensionRuntime
import Foundation
import RunnerCache
import StoreTestSupport
import Testing
import TestSupport
import WAT

@Suite("WasmKitExecutor over DiskModuleCache and every store backend")
struct ExecutorBackendTests {
    /// Packs a bundle holding the modes guest as `dist/main.wasm`.
    static func bundle() throws -> (bytes: [UInt8], hash: ContentHash) {
        let scratch = try TestSupport.makeTemporaryDirectory("runtime-bundle")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try TestSupport.write(
            Array(#"{"name":"com.acme.runtime","publisher":"Acme","version":"1.0.0","runtime":"wasm-core@1"}"#.utf8), to: "src/manifest.json",
            in: scratch)
        try TestSupport.write(try wat2wasm(Modes.wat), to: "src/dist/main.wasm", in: scratch)
        var out: [UInt8] = []
        _ = try BundlePacker.pack(directory: scratch + "/src", configuration: .init(zstd: .init(level: 3))) { out.append(contentsOf: $0) }
        return (out, ContentHash.of(out))
    }

    @Test(arguments: Backend.available)
    func aRequestRunsTheSameWayWithTheModuleFromEachBackend(backend: Backend) async throws {
        let fixture = try backend.make()
        let store = try BundleStore(objects: fixture.store)
        let (bytes, hash) = try Self.bundle()
        _ = try await store.putBundle(.bytes(bytes), expected: hash)
        let folder = try TestSupport.makeTemporaryDirectory("runtime-cache")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cache = try DiskModuleCache(root: folder + "/root", store: store)
        let executor = WasmKitExecutor(modules: cache)
        var request = Harness.request(hash, body: Modes.echo)
        request.context.contentHash = hash.hex  // bare hex, as some gateways send it
        let response = await executor.execute(request)
        #expect(response.error == nil)
        #expect(response.status == 200)
        let document = try jsonObject(response)
        #expect((document["context"] as? [String: Any])?["content_hash"] as? String == hash.hex)
        #expect(await cache.contains(hash))
        #expect(await executor.execute(Harness.request(hash, body: Modes.trap)).error == "execute_failed: trap: unreachable")
        #expect(await executor.execute(Harness.request(hash, body: Modes.echo)).status == 200)
        // A hash the store does not have is a bundle failure, named.
        let missing = await executor.execute(Harness.request(ContentHash.of([9])))
        #expect(missing.status == 502)
        #expect(missing.error?.hasPrefix("bundle_fetch_failed: CACHE_NOT_FOUND") == true)
        try await executor.warm(hash)
    }
}
